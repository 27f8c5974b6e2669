"""``GET /files/{id}.mp4?token=…``: the result clips, as a signed-URL CDN would serve them.

Why a token: real output URLs are signed and expire (Runway: 24–48 h), and the cure is to poll
the task again for a fresh one. Every poll that reports success hands out a new token; a token
answers 403 once ``url_ttl`` simulated seconds have passed, or at once if the ``expire`` fault
doomed the task's first URL. Range requests answer 206 with Content-Range (one range; several
ranges are ignored and the whole file is sent, as RFC 9110 allows). A ``truncate`` fault promises
the full Content-Length, sends about half, and closes the connection. The clip is as long as the
task asked for (see ``mp4.py``).
"""

from __future__ import annotations

import asyncio
import re
import time

from aiohttp import web

from runner.simulator.mp4 import Clip, base_clip
from runner.simulator.wire import answer_fault, world_of

ROUTE = "/files/{file_id}.mp4"
CODES_5XX = (500, 502, 503)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    """A Range that selects nothing of the file (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, stop) — stop exclusive — for a single ``bytes=`` range; None to send everything."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # malformed or multi-range: ignore it, send the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return max(0, size - length), size
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if start >= size or stop <= start:
        raise Unsatisfiable
    return start, stop


def _plain(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


async def download(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    file_id = request.match_info["file_id"]
    task = world.files.get(file_id)
    if task is None:
        return _plain(404, "NoSuchKey: the file does not exist")
    state = world.url_state(file_id, request.query.get("token"))
    if state != "ok":
        reason = "Request has expired" if state == "expired" else "Invalid signature"
        return _plain(403, f"AccessDenied: {reason}")
    key = f"download:{file_id}"
    decision = world.faults.request(key, codes_5xx=CODES_5XX, can_reset=True)
    refused = await answer_fault(request, world, decision, _plain)
    if refused is not None:
        return refused
    label = f"previz-sim {task.provider} task {task.task_id}"
    clip = Clip(label, pad_to=world.config.clip_bytes, base=base_clip(task.duration))
    try:
        span = parse_range(request.headers.get("Range"), clip.size)
    except Unsatisfiable:
        unsatisfiable = _plain(416, "Range Not Satisfiable")
        unsatisfiable.headers["Content-Range"] = f"bytes */{clip.size}"
        return unsatisfiable
    start, stop = span or (0, clip.size)
    response = web.StreamResponse(status=206 if span else 200)
    response.content_type = "video/mp4"
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{file_id}"'
    if span:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{clip.size}"
    response.content_length = stop - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    return await _send(
        request, response, clip, start, stop, truncate=world.faults.truncate(key, decision.attempt)
    )


async def _send(
    request: web.Request, response: web.StreamResponse, clip: Clip, start: int, stop: int, *, truncate: bool
) -> web.StreamResponse:
    """Stream the bytes; a truncated download stops about halfway and drops the connection."""
    world = world_of(request)
    world.downloads += 1
    limit = start + (stop - start) // 2 if truncate else stop
    pace = _Pace(world.config.download_mbps)
    for piece in clip.read(start, limit):
        await response.write(piece)
        world.download_bytes += len(piece)
        await pace.sent(len(piece))
    if truncate:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return response
    await response.write_eof()
    return response


class _Pace:
    """At most ``mbps`` MB per real second on one connection (None: no limit)."""

    def __init__(self, mbps: float | None) -> None:
        self._rate = mbps * 1e6 if mbps else None
        self._start = time.monotonic()
        self._sent = 0

    async def sent(self, size: int) -> None:
        if self._rate is None:
            return
        self._sent += size
        ahead = self._start + self._sent / self._rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


def add_routes(app: web.Application) -> None:
    app.router.add_get(ROUTE, download)
