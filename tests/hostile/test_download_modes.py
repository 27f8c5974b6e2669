"""download() against the hostile CDN: every bad answer ends in the right error, fast, leaving nothing.

For each mode: the error class says whether a retry can help (``retryable``), nothing is kept as
done (no clip, no ``.part``), and what reached the disk stayed under the cap while it lasted (a
watcher samples the ``.part`` file's size as the download runs).
"""

from __future__ import annotations

import importlib.util
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from types import ModuleType

import aiohttp
import anyio
import pytest

from runner.engine import download as download_module
from runner.engine.download import (
    DEFAULT_MAX_BYTES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    MAX_REDIRECTS,
    PIECE,
    Downloaded,
    download,
)
from runner.errors import DownloadError, TransientError, UnfetchableError
from runner.simulator.mp4 import DEFAULT_SECONDS
from tests.hostile.server import REDIRECT_TARGETS, SAFETY_STOP, HostileServer, hostile_server

pytestmark = pytest.mark.anyio

CAP = 1024 * 1024
#: a refusal that needs no network must come at once, not after retries
PROMPT_S = 0.5


def _make_clip_script() -> ModuleType:
    """scripts/make_clip.py, the maker of the simulator's clip: the source of its true size and length."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_clip.py"
    spec = importlib.util.spec_from_file_location("make_clip", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PartWatcher:
    """Samples the size of ``dest``'s ``.part`` file every millisecond while a download runs."""

    def __init__(self, dest: Path) -> None:
        self.part = dest.with_name(dest.name + ".part")
        self.largest = 0
        self.samples = 0

    async def watch(self) -> None:
        while True:
            with suppress(FileNotFoundError):
                self.largest = max(self.largest, self.part.stat().st_size)
            self.samples += 1
            await anyio.sleep(0.001)


@asynccontextmanager
async def watching(dest: Path) -> AsyncIterator[PartWatcher]:
    watcher = PartWatcher(dest)
    async with anyio.create_task_group() as tg:
        tg.start_soon(watcher.watch)
        try:
            yield watcher
        finally:
            tg.cancel_scope.cancel()


async def _fetch(
    hostile: HostileServer,
    path: str,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
) -> Downloaded:
    async with aiohttp.ClientSession() as session:
        return await download(
            session,
            hostile.url(path),
            dest,
            provider="cdn",
            take="shot#t01",
            max_bytes=max_bytes,
            read_timeout=read_timeout,
            total_timeout=total_timeout,
        )


def _nothing_kept(tmp_path: Path) -> None:
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


# -- bodies that are not a whole clip -----------------------------------------------------------------


async def test_an_ftyp_box_followed_by_zeros_is_not_a_clip(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        with pytest.raises(DownloadError, match="not an MP4") as caught:
            await _fetch(hostile, "/clip/ftyp-zeros.mp4", dest)
    assert caught.value.retryable, "a CDN glitch may clear: the caller may try again"
    _nothing_kept(tmp_path)


async def test_an_endless_body_stops_at_the_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pieces of 64 kB: with only a few queued, the writer thread has written some before the cap
    # stops the reading, so the watcher sees the file grow (a 1 MB piece could be the cap at once).
    monkeypatch.setattr(download_module, "PIECE", 64 * 1024)
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile, watching(dest) as watcher:
        with pytest.raises(UnfetchableError, match="over the size cap") as caught:
            await _fetch(hostile, "/clip/endless.mp4", dest, max_bytes=CAP)
        sent = hostile.sent["/clip/endless.mp4"]
    assert not caught.value.retryable
    assert watcher.samples > 1
    assert 0 < watcher.largest <= CAP, f"{watcher.largest} bytes on disk with a {CAP}-byte cap"
    assert sent < SAFETY_STOP, "the client hung up; it did not read the endless body to the server's stop"
    _nothing_kept(tmp_path)


async def test_a_gzip_bomb_is_inflated_only_up_to_the_cap(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile, watching(dest) as watcher:
        tracemalloc.start()
        try:
            with pytest.raises(UnfetchableError, match="over the size cap"):
                await _fetch(hostile, "/clip/gzip-bomb.mp4", dest, max_bytes=CAP)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The bomb inflates faster than the writer thread writes: the cap may be hit before a byte of
    # it reaches the disk, so "something was written" is the endless-body test's to show.
    assert watcher.samples > 1 and watcher.largest <= CAP
    # bounded by the cap and the download's own read piece, not by what the bomb would inflate to
    assert peak < 4 * CAP + 2 * PIECE, f"peak {peak / 1e6:.1f} MB"
    _nothing_kept(tmp_path)


async def test_a_length_over_the_cap_is_refused_before_a_byte_is_written(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile, watching(dest) as watcher:
        with pytest.raises(
            UnfetchableError, match=rf"over the size cap of {CAP} bytes \({4 * 1024**3} bytes or more\)"
        ):
            await _fetch(hostile, "/clip/lying-length.mp4", dest, max_bytes=CAP)
    assert watcher.largest == 0
    _nothing_kept(tmp_path)


# -- bodies that never end in time ----------------------------------------------------------------


async def test_a_byte_every_second_fails_on_the_per_read_timeout(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    read_timeout = 0.2
    async with hostile_server(trickle_every=1.0) as hostile:
        started = time.monotonic()
        with pytest.raises(TransientError, match=f"no data for {read_timeout:g} s"):
            await _fetch(hostile, "/clip/trickle.mp4", dest, read_timeout=read_timeout)
        elapsed = time.monotonic() - started
    assert elapsed < hostile.trickle_every * 2, f"gave up after {elapsed:.2f} s"
    _nothing_kept(tmp_path)


async def test_a_steady_trickle_fails_on_the_overall_timeout(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    total = 0.5
    async with hostile_server(trickle_every=0.02) as hostile:
        started = time.monotonic()
        with pytest.raises(TransientError, match=f"not finished after {total:g} s"):
            await _fetch(hostile, "/clip/trickle.mp4", dest, read_timeout=5.0, total_timeout=total)
        elapsed = time.monotonic() - started
        sent = hostile.sent["/clip/trickle.mp4"]
    assert sent > 1, "bytes kept coming, so only the overall timeout could stop it"
    assert total <= elapsed < total + 1.0
    _nothing_kept(tmp_path)


# -- URLs that can never work fail at once ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://cdn.example.invalid/clip.mp4",
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAAIGZ0eXA=",
        "garbage",
        "",
        "http://cdn.example.invalid/clip.mp4",
        "HTTP://93.184.216.34/clip.mp4",
        "https:///no-host.mp4",
        "http://[zz/clip.mp4",
    ],
)
async def test_a_url_that_can_never_work_fails_at_once(tmp_path: Path, url: str) -> None:
    dest = tmp_path / "shot" / "clip.mp4"
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UnfetchableError) as caught:
            await download(session, url, dest, provider="cdn", take="shot#t01")
    assert time.monotonic() - started < PROMPT_S
    assert not caught.value.retryable
    assert "cdn · take shot#t01" in str(caught.value)
    assert not dest.parent.exists(), "not even the shot folder is made for a URL that cannot work"


async def test_credentials_in_a_result_url_stay_out_of_the_message(tmp_path: Path) -> None:
    url = "ftp://alice:hunter2secret@cdn.example.invalid/clip.mp4?token=tok3n&w=1"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UnfetchableError) as caught:
            await download(session, url, tmp_path / "c.mp4", provider="cdn", take="s#t01")
    message = str(caught.value)
    assert "hunter2secret" not in message and "alice" not in message and "tok3n" not in message
    assert "cdn.example.invalid/clip.mp4?w=1" in message


# -- redirects ----------------------------------------------------------------------------------------


async def test_a_clip_from_a_loopback_host_arrives_verified_with_its_size_and_length(tmp_path: Path) -> None:
    maker = _make_clip_script()
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        got = await _fetch(hostile, "/clip/good.mp4", dest)
    assert (got.clip_duration_s, got.width, got.height) == (DEFAULT_SECONDS, maker.WIDTH, maker.HEIGHT)
    assert got.path == dest and dest.stat().st_size == got.bytes


async def test_redirects_are_followed_up_to_the_limit(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        got = await _fetch(hostile, f"/redirect/chain/{MAX_REDIRECTS}", dest)
    assert got.path.exists()


async def test_one_redirect_past_the_limit_fails(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        with pytest.raises(UnfetchableError, match=f"more than {MAX_REDIRECTS} redirects"):
            await _fetch(hostile, f"/redirect/chain/{MAX_REDIRECTS + 1}", dest)
    _nothing_kept(tmp_path)


async def test_a_redirect_to_another_loopback_name_is_followed(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        got = await _fetch(hostile, "/redirect/to-localhost", dest)
    assert got.path.exists()


@pytest.mark.parametrize("mode", sorted(REDIRECT_TARGETS))
async def test_a_redirect_off_https_or_without_a_target_fails_at_once(tmp_path: Path, mode: str) -> None:
    dest = tmp_path / "clip.mp4"
    async with hostile_server() as hostile:
        started = time.monotonic()
        with pytest.raises(UnfetchableError, match="HTTP 302 redirect to") as caught:
            await _fetch(hostile, f"/redirect/{mode}", dest)
    assert time.monotonic() - started < PROMPT_S
    assert not caught.value.retryable
    _nothing_kept(tmp_path)
