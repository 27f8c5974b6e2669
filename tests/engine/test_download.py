"""Streamed, verified downloads (runner/engine/download.py), over loopback only.

Clips come from the simulator (a task submitted over raw HTTP, then its output URL) or, where a
test needs exact control of the bytes on the wire (a body cut short once, a server that ignores
Range, a chunked body), from a small aiohttp.web app of this module on 127.0.0.1, port 0.
"""

from __future__ import annotations

import hashlib
import random
import time
import tracemalloc
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from io import BufferedRandom, BufferedWriter
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner.engine import download as download_module
from runner.engine.download import download
from runner.errors import DownloadError, ExpiredURLError, TransientError
from runner.simulator import Simulator
from runner.simulator.mp4 import base_clip
from tests.conftest import SimFactory
from tests.simulator.helpers import aiml_body, aiml_headers, assert_mp4, eventually, get_json, post_json

pytestmark = pytest.mark.anyio

#: Sim speed for these tests: only the clip matters here, not the engine's timing.
FAST = 0.002
#: A real MP4 (the simulator's clip) with a ``free`` box of 300 kB of seeded noise appended, so a
#: misplaced byte shows in the hash and the file still passes the box walk.
NOISE = random.Random(42).randbytes(300_000)
CLIP = base_clip() + (8 + len(NOISE)).to_bytes(4, "big") + b"free" + NOISE
#: bytes a cut-short answer waits to see stored on the client's side before dropping the line
CUT_SEEN = 16_384


def _part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _parts(dest: Path) -> list[Path]:
    return sorted(dest.parent.glob("*.part"))


# -- a server of our own ----------------------------------------------------------------------------


@dataclass
class ClipServer:
    base_url: str = ""
    #: path → the Range header of each request (None when absent)
    ranges: defaultdict[str, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    #: the client's ``.part`` file: a cut waits until the client has stored part of the body
    watch: Path | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    value = header[len("bytes=") : -1]
    return int(value) if value.isdigit() else None


async def _stored(path: Path, at_least: int) -> None:
    """Wait (bounded) until the client has written ``at_least`` bytes to ``path``."""

    apath = anyio.Path(path)

    async def probe() -> bool | None:
        return True if await apath.exists() and (await apath.stat()).st_size >= at_least else None

    await eventually(probe, attempts=2000, interval=0.002)


async def _send(
    request: web.Request,
    server: ClipServer,
    body: bytes,
    *,
    ranges: bool,
    cut: bool,
    chunked: bool = False,
) -> web.StreamResponse:
    """``body`` (or the asked-for tail of it).

    ``cut``: promise it all, send half, and once the client has stored some of it (so the cut is
    not lost in the client's read buffer), drop the connection.
    """
    start = _range_start(request.headers.get("Range")) if ranges else None
    response = web.StreamResponse(status=206 if start else 200)
    response.content_type = "video/mp4"
    if ranges:
        response.headers["Accept-Ranges"] = "bytes"
    if start:
        response.headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
    payload = body[start or 0 :]
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(payload)
    await response.prepare(request)
    if cut:
        await response.write(payload[: len(payload) // 2])
        if server.watch is not None:
            await _stored(server.watch, CUT_SEEN)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write(payload)
    await response.write_eof()
    return response


async def _cut_at(server: ClipServer, request: web.Request) -> web.StreamResponse:
    """The first answer promises the whole clip, sends exactly ``offset`` bytes of it and ends
    the connection cleanly (every byte reaches the client); later ones serve the Range."""
    offset = int(request.match_info["offset"])
    hits = server.ranges[request.path]
    hits.append(request.headers.get("Range"))
    if len(hits) > 1:
        return await _send(request, server, CLIP, ranges=True, cut=False)
    response = web.StreamResponse(status=200, headers={"Accept-Ranges": "bytes"})
    response.content_type = "video/mp4"
    response.content_length = len(CLIP)
    await response.prepare(request)
    await response.write(CLIP[:offset])
    if request.transport is not None:
        request.transport.close()  # a FIN after the buffered bytes, not a reset that drops them
    return response


def _app(server: ClipServer) -> web.Application:
    def seen(request: web.Request) -> int:
        hits = server.ranges[request.path]
        hits.append(request.headers.get("Range"))
        return len(hits)

    async def whole(request: web.Request) -> web.StreamResponse:
        seen(request)
        return await _send(request, server, CLIP, ranges=True, cut=False)

    async def short_once(request: web.Request) -> web.StreamResponse:
        return await _send(request, server, CLIP, ranges=True, cut=seen(request) == 1)

    async def short_once_no_range(request: web.Request) -> web.StreamResponse:
        return await _send(request, server, CLIP, ranges=False, cut=seen(request) == 1)

    async def always_short(request: web.Request) -> web.StreamResponse:
        seen(request)
        return await _send(request, server, CLIP, ranges=True, cut=True)

    async def chunked_cut(request: web.Request) -> web.StreamResponse:
        seen(request)
        return await _send(request, server, CLIP, ranges=False, cut=True, chunked=True)

    async def status(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(status=int(request.match_info["code"]), text="AccessDenied: Request has expired")

    async def html(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(text="<!doctype html><title>CDN</title>" + "x" * 4000, content_type="text/html")

    async def tiny(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(body=b"\x00\x00", content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/cut-at/{offset}.mp4", partial(_cut_at, server))
    app.router.add_get("/whole.mp4", whole)
    app.router.add_get("/short-once.mp4", short_once)
    app.router.add_get("/short-once-no-range.mp4", short_once_no_range)
    app.router.add_get("/always-short.mp4", always_short)
    app.router.add_get("/chunked-cut.mp4", chunked_cut)
    app.router.add_get("/status/{code}.mp4", status)
    app.router.add_get("/page.mp4", html)
    app.router.add_get("/tiny.mp4", tiny)
    return app


@asynccontextmanager
async def clip_server(watch: Path | None = None) -> AsyncIterator[ClipServer]:
    server = ClipServer(watch=watch)
    http = TestServer(_app(server), host="127.0.0.1")
    await http.start_server(shutdown_timeout=1.0)
    server.base_url = str(http.make_url("")).rstrip("/")
    try:
        yield server
    finally:
        await http.close()


async def _get(session: aiohttp.ClientSession, server: ClipServer, path: str, dest: Path) -> Path:
    got = await download(session, server.url(path), dest, provider="test", take="shot#t01")
    return got.path


# -- against the simulator --------------------------------------------------------------------------


async def _sim_clip_url(session: aiohttp.ClientSession, sim: Simulator) -> str:
    """Submit one AIML task over raw HTTP, wait for it, return its (signed) output URL."""
    endpoint = f"{sim.base_url}/v2/video/generations"
    _, created = await post_json(session, endpoint, aiml_body(seed=5), headers=aiml_headers(sim))
    poll = f"{endpoint}?generation_id={created['id']}"

    async def probe() -> str | None:
        _, body = await get_json(session, poll, headers=aiml_headers(sim))
        return body["video"]["url"] if body["status"] == "completed" else None

    url: str = await eventually(probe)
    return url


async def test_a_simulator_clip_arrives_whole_and_verified(sim_factory: SimFactory, tmp_path: Path) -> None:
    dest = tmp_path / "shot" / "shot_t01_s5.mp4"
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        url = await _sim_clip_url(session, sim)
        got = await download(session, url, dest, provider="aimlapi", take="shot#t01")
        async with session.get(url) as resp:
            reference = await resp.read()
    data = dest.read_bytes()
    assert data == reference
    assert got.path == dest
    assert got.bytes == len(data) == len(reference)
    assert got.sha256 == hashlib.sha256(reference).hexdigest()
    assert_mp4(data)
    assert _parts(dest) == []


async def test_a_clip_that_keeps_arriving_short_fails_after_resuming(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    dest = tmp_path / "clip.mp4"
    async with sim_factory(time_scale=FAST, truncate=1.0) as sim, aiohttp.ClientSession() as session:
        url = await _sim_clip_url(session, sim)
        with pytest.raises(DownloadError, match="after resuming"):
            await download(session, url, dest, provider="aimlapi", take="a#t01", max_resumes=3)
        stats = sim.stats()
    assert stats["downloads"] == 4, "the first request and three resumes"
    assert stats["faults"]["truncate"] == 4
    assert not dest.exists()
    assert _parts(dest) == []


async def test_memory_stays_flat_for_a_big_clip(sim_factory: SimFactory, tmp_path: Path) -> None:
    size = 40_000_000
    dest = tmp_path / "big.mp4"
    async with sim_factory(time_scale=FAST, clip_bytes=size) as sim, aiohttp.ClientSession() as session:
        url = await _sim_clip_url(session, sim)
        tracemalloc.start()
        try:
            got = await download(session, url, dest, provider="aimlapi", take="big#t01")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.bytes == size == dest.stat().st_size
    # The pieces in the writer's queue and in hand (download.py: about 6 MB) plus a piece's transient
    # copies in aiohttp's buffer: 4.5-8.2 MB seen; a clip held whole would be 40 MB.
    assert peak < 12_000_000, f"peak {peak / 1e6:.1f} MB while downloading a 40 MB clip"
    with dest.open("rb") as fh:
        assert fh.read(8)[4:8] == b"ftyp"
    hasher = hashlib.sha256()
    with dest.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
    assert got.sha256 == hasher.hexdigest()


# -- against a server of our own ------------------------------------------------------------------


async def test_a_whole_clip_matches_its_size_and_hash(tmp_path: Path) -> None:
    dest = tmp_path / "s" / "s_t01_s1.mp4"
    async with clip_server() as server, aiohttp.ClientSession() as session:
        got = await download(session, server.url("/whole.mp4"), dest, provider="test", take="s#t01")
    assert dest.read_bytes() == CLIP
    assert (got.bytes, got.sha256) == (len(CLIP), hashlib.sha256(CLIP).hexdigest())
    assert _parts(dest) == []


async def test_a_short_body_is_resumed_with_range(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server(watch=_part_of(dest)) as server, aiohttp.ClientSession() as session:
        got = await download(session, server.url("/short-once.mp4"), dest, provider="test", take="s#t01")
        ranges = server.ranges["/short-once.mp4"]
    assert len(ranges) == 2 and ranges[0] is None
    resumed_at = _range_start(ranges[1])
    assert resumed_at is not None and CUT_SEEN <= resumed_at <= len(CLIP) // 2, ranges
    assert dest.read_bytes() == CLIP
    assert got.sha256 == hashlib.sha256(CLIP).hexdigest(), "the hash spans both requests"
    assert got.bytes == len(CLIP)
    assert _parts(dest) == []


async def test_a_server_without_range_support_is_restarted_from_zero(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server(watch=_part_of(dest)) as server, aiohttp.ClientSession() as session:
        got = await download(
            session, server.url("/short-once-no-range.mp4"), dest, provider="test", take="s#t01"
        )
        ranges = server.ranges["/short-once-no-range.mp4"]
    assert len(ranges) == 2 and ranges[1] is not None, "a resume was tried"
    assert dest.read_bytes() == CLIP, "the 200 answer replaced the partial file, not appended to it"
    assert (got.bytes, got.sha256) == (len(CLIP), hashlib.sha256(CLIP).hexdigest())
    assert _parts(dest) == []


async def test_our_always_short_server_fails_after_max_resumes(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server(watch=_part_of(dest)) as server, aiohttp.ClientSession() as session:
        with pytest.raises(DownloadError, match=rf"got \d+ of {len(CLIP)} bytes"):
            await download(
                session, server.url("/always-short.mp4"), dest, provider="test", take="s#t01", max_resumes=2
            )
        assert len(server.ranges["/always-short.mp4"]) == 3
    assert not dest.exists()
    assert _parts(dest) == []


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_an_expired_url_says_so(tmp_path: Path, code: int) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server() as server, aiohttp.ClientSession() as session:
        with pytest.raises(ExpiredURLError) as caught:
            await _get(session, server, f"/status/{code}.mp4?token=s3cr3t-signature", dest)
    assert caught.value.status == code
    assert "s3cr3t" not in str(caught.value), "the signed query string stays out of messages"
    assert not dest.exists()
    assert _parts(dest) == []


@pytest.mark.parametrize("code", [500, 503])
async def test_a_server_error_is_transient_not_expired(tmp_path: Path, code: int) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server() as server, aiohttp.ClientSession() as session:
        with pytest.raises(TransientError) as caught:
            await _get(session, server, f"/status/{code}.mp4", dest)
    assert caught.value.status == code
    assert not isinstance(caught.value, ExpiredURLError)


@pytest.mark.parametrize("path", ["/page.mp4", "/tiny.mp4"])
async def test_a_body_that_is_not_an_mp4_is_refused_and_nothing_is_left(tmp_path: Path, path: str) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server() as server, aiohttp.ClientSession() as session:
        with pytest.raises(DownloadError):
            await _get(session, server, path, dest)
    assert _listing(tmp_path) == []


async def test_an_unreachable_host_is_transient(tmp_path: Path) -> None:
    async with clip_server() as server:
        url = server.url("/whole.mp4")
    # the server is gone: nothing listens on that port now
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TransientError):
            await download(session, url, tmp_path / "clip.mp4", provider="test", take="s#t01")
    assert _listing(tmp_path) == []


async def test_a_chunked_body_cut_short_is_not_accepted(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with clip_server(watch=_part_of(dest)) as server, aiohttp.ClientSession() as session:
        with pytest.raises((DownloadError, TransientError)):
            await _get(session, server, "/chunked-cut.mp4", dest)
    assert not dest.exists()


class _SlowDisk:
    """The real ``.part`` file, each write a few milliseconds late: pieces queue behind the writer
    thread, as they do on a busy disk, when the body is cut."""

    def __init__(self, fh: BufferedWriter | BufferedRandom) -> None:
        self._fh = fh

    def write(self, data: bytes, /) -> int:
        time.sleep(0.003)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        return self._fh.fileno()

    def close(self) -> None:
        self._fh.close()


#: A small read size, so the clip is many pieces and the cuts below fall on each of their bounds.
SMALL_PIECE = 32 * 1024
CUTS = sorted(
    {k * SMALL_PIECE for k in range(1, len(CLIP) // SMALL_PIECE + 1)}
    | {k * SMALL_PIECE + SMALL_PIECE // 2 for k in range(len(CLIP) // SMALL_PIECE)}
    | {1, len(CLIP) - 1}
)


@pytest.mark.parametrize("offset", CUTS)
async def test_a_resume_after_a_cut_anywhere_writes_the_rest_at_its_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """Cut at every piece boundary and inside pieces: the resumed file is the clip, byte for byte,
    after one Range request from what was read (pieces still queued at the cut were once dropped)."""
    opened = download_module._open
    monkeypatch.setattr(download_module, "PIECE", SMALL_PIECE)
    monkeypatch.setattr(download_module, "_open", lambda *args: _SlowDisk(opened(*args)))
    dest = tmp_path / "clip.mp4"
    path = f"/cut-at/{offset}.mp4"
    async with clip_server() as server, aiohttp.ClientSession() as session:
        got = await download(session, server.url(path), dest, provider="test", take="s#t01", max_resumes=1)
        ranges = server.ranges[path]
    assert len(ranges) == 2 and ranges[0] is None, ranges
    resumed_at = _range_start(ranges[1]) or 0  # what aiohttp handed over before the cut
    assert resumed_at <= offset, ranges
    assert dest.read_bytes() == CLIP
    assert (got.bytes, got.sha256) == (len(CLIP), hashlib.sha256(CLIP).hexdigest())
    assert _parts(dest) == []
