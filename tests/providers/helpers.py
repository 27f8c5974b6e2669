"""Test helpers: neutral takes, and a tiny real HTTP server that records requests and answers from a script.

The canned server is a genuine ``aiohttp.web`` app on 127.0.0.1 (port 0), not a mock of aiohttp:
the adapters speak to it over a real socket, exactly as to a provider. Tests use it to see the
exact request an adapter sends and to serve answers the simulator would never give (a ``video``
array, an unknown status word, an HTML error page).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web
from aiohttp.test_utils import TestServer

from runner.manifest.takes import ImageKind, ImageRef, Take
from runner.providers.base import ProviderConfig, SubmitRequest
from runner.providers.registry import simulated_config

IMAGE_URL = "https://example.com/a.jpg"
TEST_KEY = "sk-test-8f2c1e0b9a7d"


def make_take(
    provider: str = "runware",
    *,
    shot: str = "dragon",
    index: int = 1,
    seed: int = 4242,
    prompt: str = "A dragon rushes toward the camera",
    duration: int = 5,
    ratio: str = "16:9",
) -> Take:
    """A take with a key derived from its fields, so different takes get different keys."""
    key = hashlib.sha256(f"{provider}|{shot}|{index}|{seed}|{prompt}|{duration}|{ratio}".encode()).hexdigest()
    return Take(
        shot=shot,
        index=index,
        seed=seed,
        provider=provider,
        model="gen4_turbo",
        prompt=prompt,
        image=ImageRef(source=IMAGE_URL, kind=ImageKind.URL, content_id=IMAGE_URL),
        last_image=None,
        duration=duration,
        ratio=ratio,
        tags=(),
        key=key,
    )


def make_request(provider: str = "runware", *, attempt: int = 1, **fields: Any) -> SubmitRequest:
    return SubmitRequest(take=make_take(provider, **fields), image=IMAGE_URL, attempt=attempt)


def config_for(
    provider: str, base_url: str, key: str = TEST_KEY, *, request_timeout: float = 5.0
) -> ProviderConfig:
    return simulated_config(provider, base_url, key, connect_timeout=2.0, request_timeout=request_timeout)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any


Reply = Callable[["Seen", "CannedServer"], Awaitable[web.StreamResponse]]


def answer(status: int, body: object, headers: Mapping[str, str] | None = None) -> Reply:
    """Always answer ``status`` with ``body`` as JSON (or as text, when ``body`` is a str)."""

    async def reply(_seen: Seen, _server: CannedServer) -> web.StreamResponse:
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers, content_type="text/html")
        return web.Response(
            status=status, text=json.dumps(body), headers=headers, content_type="application/json"
        )

    return reply


def in_turn(*replies: Reply) -> Reply:
    """Each reply once, in order; the last one repeats."""
    remaining = list(replies)

    async def reply(seen: Seen, server: CannedServer) -> web.StreamResponse:
        current = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return await current(seen, server)

    return reply


async def hang(_seen: Seen, server: CannedServer) -> web.StreamResponse:
    """Receive the request, then never answer (until the server closes)."""
    with anyio.move_on_after(10):
        await server.closing.wait()
    return web.Response(status=503)


@dataclass
class CannedServer:
    reply: Reply
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""
    closing: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        return await self.reply(self.seen[-1], self)


@asynccontextmanager
async def canned(reply: Reply) -> AsyncIterator[CannedServer]:
    """A real HTTP server on 127.0.0.1:0 answering every request with ``reply``."""
    server = CannedServer(reply)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    http = TestServer(app, host="127.0.0.1")
    await http.start_server(shutdown_timeout=1.0)
    server.base_url = str(http.make_url("")).rstrip("/")
    try:
        yield server
    finally:
        server.closing.set()
        await http.close()
