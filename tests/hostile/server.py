"""A hostile provider and CDN: a real aiohttp.web app on 127.0.0.1 (port 0), one mode per bad answer.

Why a server of its own: the simulator answers like the real APIs, faults included, but never
like a broken or malicious one. Each mode here is one answer from issue 9 that previz used to
believe or to wait on forever. Endless bodies are endless only as far as :data:`SAFETY_STOP`, so a
client without limits makes the test fail (it reads far too much) instead of hanging it; the
server counts the body bytes it managed to hand to the socket, per path, so a test can show the
client stopped reading.

Downloads (``GET``): ``/clip/<mode>`` and ``/redirect/...``.
API answers: every other path, answered according to ``HostileServer.api_mode``.
A provider that echoes the key, or sends terminal escapes, in all three wire shapes at once:
:mod:`tests.hostile.echo`.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner.simulator.mp4 import base_clip

#: a 24-byte ftyp box: what every MP4 starts with, and all that some broken bodies hold
FTYP = (24).to_bytes(4, "big") + b"ftypisom" + bytes(4) + b"isomiso2"
#: an "endless" body stops here; a client that reads this far has no limit worth the name
SAFETY_STOP = 256 * 1024 * 1024
PIECE = 64 * 1024
#: a gzip bomb inflates to this much (64 times either cap under test); compressing more costs CPU only
GZIP_STOP = 64 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HostileServer:
    """What the app answers and what it saw. ``api_mode``: one of API_MODES."""

    server: TestServer | None = None
    api_mode: str = "html"
    #: the "cost" mode answers every call as a finished Runway task (submit and poll alike, id "t1"),
    #: whose cost.credits is this literal (NaN, -1000, …) and whose output is ``result``: a path on
    #: this server (a /clip/ or /redirect/ mode) or any URL (file:///etc/passwd, http://remote/…)
    cost_literal: str = "25"
    result: str = "/clip/good.mp4"
    #: seconds between two bytes of the trickle mode
    trickle_every: float = 1.0
    sent: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def url(self, path: str) -> str:
        return self.base_url + path


async def _endless(
    request: web.Request,
    hostile: HostileServer,
    first: bytes,
    filler: bytes,
    *,
    claims: int | None = None,
    status: int = 200,
) -> web.StreamResponse:
    """``first``, then ``filler`` until the client hangs up (or SAFETY_STOP).

    Without a length by default; ``claims`` sends that Content-Length instead (a lie: it never ends).
    """
    response = web.StreamResponse(status=status)
    if claims is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = claims
    await response.prepare(request)
    piece = first
    try:
        while hostile.sent[request.path] < SAFETY_STOP:
            await response.write(piece)
            hostile.sent[request.path] += len(piece)
            piece = filler
        await response.write_eof()
    except (ConnectionError, RuntimeError):  # the client hung up: that is what the test wants
        pass
    return response


async def _gzip_bomb(request: web.Request, hostile: HostileServer, first: bytes) -> web.StreamResponse:
    """``first`` then zeros, gzip-encoded: a few kB on the wire that inflate without end."""
    response = web.StreamResponse(status=200, headers={"Content-Encoding": "gzip"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1024 * 1024)
    try:
        await response.write(packer.compress(first))
        while hostile.sent[request.path] < GZIP_STOP:  # counts inflated bytes
            await response.write(packer.compress(zeros) or packer.flush(zlib.Z_SYNC_FLUSH))
            hostile.sent[request.path] += len(zeros)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def _trickle(request: web.Request, hostile: HostileServer) -> web.StreamResponse:
    """One byte every ``hostile.trickle_every`` seconds, of a body that claims 10,000."""
    response = web.StreamResponse(status=200)
    response.content_length = 10_000
    await response.prepare(request)
    try:
        for _ in range(10_000):
            await response.write(b"\0")
            hostile.sent[request.path] += 1
            await anyio.sleep(hostile.trickle_every)
    except (ConnectionError, RuntimeError):
        pass
    return response


def _download_handlers(hostile: HostileServer) -> dict[str, Handler]:
    zeros = bytes(PIECE)

    async def ftyp_zeros(request: web.Request) -> web.StreamResponse:
        return web.Response(body=FTYP + bytes(64 * 1024), content_type="video/mp4")

    async def endless(request: web.Request) -> web.StreamResponse:
        return await _endless(request, hostile, FTYP, zeros)

    async def lying_length(request: web.Request) -> web.StreamResponse:
        return await _endless(request, hostile, FTYP, zeros, claims=4 * 1024**3)

    async def gzip_bomb(request: web.Request) -> web.StreamResponse:
        return await _gzip_bomb(request, hostile, FTYP)

    async def trickle(request: web.Request) -> web.StreamResponse:
        return await _trickle(request, hostile)

    async def good(request: web.Request) -> web.StreamResponse:
        return web.Response(body=base_clip(), content_type="video/mp4")

    return {"ftyp-zeros.mp4": ftyp_zeros, "endless.mp4": endless, "trickle.mp4": trickle,
            "lying-length.mp4": lying_length, "gzip-bomb.mp4": gzip_bomb, "good.mp4": good}  # fmt: skip


#: where each redirect mode points (None: no Location header at all)
REDIRECT_TARGETS: dict[str, str | None] = {
    "to-remote-http": "http://cdn.example.invalid/clip.mp4",
    "to-file": "file:///etc/passwd",
    "to-ftp": "ftp://cdn.example.invalid/clip.mp4",
    "to-javascript": "javascript:alert(1)",
    "no-location": None,
}


def _redirect_handlers(hostile: HostileServer) -> dict[str, Handler]:
    async def chain(request: web.Request) -> web.StreamResponse:
        """``/redirect/chain/N``: N redirects on this host (the last one to the good clip)."""
        left = int(request.match_info["n"])
        target = f"/redirect/chain/{left - 1}" if left > 1 else "/clip/good.mp4"
        raise web.HTTPFound(target)

    async def to_localhost(request: web.Request) -> web.StreamResponse:
        """To the same server by the name ``LocalHost``: another host name, still loopback."""
        assert hostile.server is not None
        raise web.HTTPFound(f"http://LocalHost:{hostile.server.port}/clip/good.mp4")

    async def named(request: web.Request) -> web.StreamResponse:
        target = REDIRECT_TARGETS[request.match_info["mode"]]
        headers = {"Location": target} if target is not None else {}
        return web.Response(status=302, headers=headers)

    return {"chain/{n}": chain, "to-localhost": to_localhost, "{mode}": named}


#: the answers to API calls, by ``api_mode``
API_MODES = ("endless-json", "gzip-bomb", "html", "deep-json", "endless-error", "cost")


def _api_handler(hostile: HostileServer) -> Handler:
    async def api(request: web.Request) -> web.StreamResponse:
        hostile.hits[hostile.api_mode] += 1
        await request.read()
        mode = hostile.api_mode
        if mode == "endless-json":
            return await _endless(request, hostile, b'{"id": "t1", "status": "', b"x" * PIECE)
        if mode == "gzip-bomb":
            return await _gzip_bomb(request, hostile, b'{"id": "t1", "status": "')
        if mode == "endless-error":
            return await _endless(request, hostile, b"", b"<p>bad gateway</p>" * 1000, status=502)
        if mode == "deep-json":
            return web.Response(body=b"[" * 200_000, content_type="application/json")
        if mode == "cost":
            result = hostile.url(hostile.result) if hostile.result.startswith("/") else hostile.result
            body = (
                f'{{"id": "t1", "status": "SUCCEEDED", "output": [{json.dumps(result)}],'
                f' "cost": {{"credits": {hostile.cost_literal}}}}}'
            )
            return web.Response(text=body, content_type="application/json")
        return web.Response(
            text="<!doctype html><html><body>Service temporarily unavailable</body></html>",
            content_type="text/html",
        )

    return api


def hostile_app(hostile: HostileServer) -> web.Application:
    app = web.Application()
    for name, handler in _download_handlers(hostile).items():
        app.router.add_get(f"/clip/{name}", handler)
    for name, handler in _redirect_handlers(hostile).items():
        app.router.add_get(f"/redirect/{name}", handler)
    app.router.add_route("*", "/{tail:.*}", _api_handler(hostile))
    return app


@asynccontextmanager
async def hostile_server(
    api_mode: str = "html", *, trickle_every: float = 1.0
) -> AsyncIterator[HostileServer]:
    """``async with hostile_server("html") as hostile:`` — listening on 127.0.0.1, a free port."""
    hostile = HostileServer(api_mode=api_mode, trickle_every=trickle_every)
    hostile.server = TestServer(hostile_app(hostile), host="127.0.0.1")
    await hostile.server.start_server()
    try:
        yield hostile
    finally:
        await hostile.server.close()
