"""``/files``: signed URLs that expire, fresh URLs on re-poll, Range, truncation, big streamed clips."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    aiml_body,
    aiml_headers,
    assert_mp4,
    eventually,
    fetch,
    get_json,
    mp4_boxes,
    post_json,
)

pytestmark = pytest.mark.anyio

FAST = 0.002


async def finished_url(session: aiohttp.ClientSession, sim: Simulator, seed: int = 1) -> tuple[str, str]:
    """Make an AIML task, wait for it; returns (generation id, its first output URL)."""
    endpoint = f"{sim.base_url}/v2/video/generations"
    _, created = await post_json(session, endpoint, aiml_body(seed=seed), headers=aiml_headers(sim))
    gen_id: str = created["id"]
    return gen_id, await repoll(session, sim, gen_id)


async def repoll(session: aiohttp.ClientSession, sim: Simulator, gen_id: str) -> str:
    endpoint = f"{sim.base_url}/v2/video/generations?generation_id={gen_id}"

    async def probe() -> str | None:
        _, body = await get_json(session, endpoint, headers=aiml_headers(sim))
        return body["video"]["url"] if body["status"] == "completed" else None

    return await eventually(probe)


async def test_url_expires_after_ttl_and_a_repoll_hands_out_a_fresh_one(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, url_ttl=30.0) as sim, aiohttp.ClientSession() as session:
        gen_id, url = await finished_url(session, sim)
        assert (await fetch(session, url))[0] == 200

        async def expired() -> bytes | None:
            status, body, _ = await fetch(session, url)
            return body if status == 403 else None

        assert b"AccessDenied" in await eventually(expired)
        fresh = await repoll(session, sim, gen_id)
        assert fresh != url
        assert urlsplit(fresh).path == urlsplit(url).path  # same file, new token
        status, data, _ = await fetch(session, fresh)
        assert status == 200
        assert_mp4(data)


async def test_expire_fault_dooms_only_the_first_url(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, expire=1.0) as sim, aiohttp.ClientSession() as session:
        gen_id, url = await finished_url(session, sim)
        status, body, _ = await fetch(session, url)
        assert status == 403 and b"expired" in body
        status, data, _ = await fetch(session, await repoll(session, sim, gen_id))
        assert status == 200
        assert_mp4(data)
        assert sim.stats()["faults"]["expire"] == 1


async def test_tokens_are_checked(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        path = urlsplit(url).path
        assert (await fetch(session, sim.base_url + path))[0] == 403
        assert (await fetch(session, f"{sim.base_url}{path}?token=forged"))[0] == 403
        assert (await fetch(session, f"{sim.base_url}/files/nothing.mp4?token=x"))[0] == 404
        assert parse_qs(urlsplit(url).query)["token"]


async def test_range_requests(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        status, whole, headers = await fetch(session, url)
        size = len(whole)
        assert status == 200 and headers["Accept-Ranges"] == "bytes"
        assert int(headers["Content-Length"]) == size
        cases = [("bytes=0-99", 0, 100), ("bytes=100-", 100, size), ("bytes=-50", size - 50, size)]
        for header, start, stop in cases:
            status, part, headers = await fetch(session, url, headers={"Range": header})
            assert status == 206
            assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
            assert part == whole[start:stop]
        status, _, headers = await fetch(session, url, headers={"Range": f"bytes={size}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        status, part, _ = await fetch(session, url, headers={"Range": "bytes=0-1,5-9"})
        assert status == 200 and part == whole  # several ranges: the whole file
        async with session.head(url) as response:
            assert response.status == 200 and int(response.headers["Content-Length"]) == size
            assert await response.read() == b""


async def test_truncated_download_promises_more_than_it_sends(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, truncate=1.0) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        async with session.get(url) as response:
            assert response.status == 200
            promised = int(response.headers["Content-Length"])
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        stats = sim.stats()
        assert stats["faults"]["truncate"] == 1
        assert 0 < stats["download_bytes"] < promised


async def test_each_task_has_its_own_bytes_and_downloads_are_counted(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        _, first = await finished_url(session, sim, seed=1)
        _, second = await finished_url(session, sim, seed=2)
        a, b = (await fetch(session, first))[1], (await fetch(session, second))[1]
        assert hashlib.sha256(a).digest() != hashlib.sha256(b).digest()
        assert_mp4(a)
        assert_mp4(b)
        stats = sim.stats()
        assert (stats["downloads"], stats["download_bytes"]) == (2, len(a) + len(b))


async def test_big_clips_are_streamed_at_the_configured_size(sim_factory: SimFactory) -> None:
    size = 12 * 1024 * 1024
    async with sim_factory(time_scale=FAST, clip_bytes=size) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        digest = hashlib.sha256()
        received = 0
        head = b""
        async with session.get(url) as response:
            assert int(response.headers["Content-Length"]) == size
            async for piece in response.content.iter_chunked(256 * 1024):
                digest.update(piece)
                received += len(piece)
                if len(head) < 64 * 1024:
                    head += piece
        assert received == size
        assert head[4:8] == b"ftyp"
        status, tail, _ = await fetch(session, url, headers={"Range": f"bytes={size - 16}-"})
        assert status == 206 and tail == bytes(16)  # the padding inside the final free box


async def test_padded_clip_is_a_valid_box_sequence(sim_factory: SimFactory) -> None:
    size = 300_000
    async with sim_factory(time_scale=FAST, clip_bytes=size) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        data = (await fetch(session, url))[1]
    assert len(data) == size
    assert mp4_boxes(data)[-1][0] == "free"


async def test_a_per_connection_rate_paces_each_download(sim_factory: SimFactory) -> None:
    """``download_mbps`` (the download-limit benchmark's CDN): 1 MB at 10 MB/s takes 0.1 s or more,
    and the clip is whole."""
    size = 1_000_000
    knobs = {"clip_bytes": size, "download_mbps": 10.0}
    async with sim_factory(time_scale=FAST, **knobs) as sim, aiohttp.ClientSession() as session:
        _, url = await finished_url(session, sim)
        started = time.monotonic()
        data = (await fetch(session, url))[1]
        took = time.monotonic() - started
    assert len(data) == size
    assert took >= 0.09, f"{took:.3f} s: not paced"
