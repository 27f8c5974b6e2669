"""A hostile front for the simulator: an outage between the runner and an honest provider.

A real aiohttp.web app on 127.0.0.1 (port 0) that passes every request on to the simulator,
except the kinds a test spoils — polls, cancels, submit answers — which it answers badly in one of
:data:`SPOILS`. Money stays the simulator's: a submit passed on is registered and billed by it
whatever the runner is told, so a test audits the runner's ledger against ``/_sim/stats``.

Which request is which is read off the wire (providers.md): Runway ``GET``/``DELETE
/v1/tasks/{id}``, AIML ``GET /v2/video/generations``, Runware ``POST /v1`` holding
``getResponse`` or ``videoInference`` tasks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.hostile.server import PIECE, SAFETY_STOP

#: how a spoiled request is answered
SPOILS = ("5xx", "html", "huge", "endless", "429", "400", "queued")
_HTML = b"<!doctype html><html><body>Service temporarily unavailable</body></html>"


@dataclass
class Front:
    """What the front spoils (None: passed on), and what it saw."""

    upstream: str
    polls: str | None = None
    cancels: str | None = None
    #: submit answers: the submit is passed on (it lands) and its answer replaced by this spoil
    submits: str | None = None
    #: submits are not passed on at all (they provably never land), answered as ``submits`` says
    drop_submits: bool = False
    #: spoil only this many poll requests, then pass polls on (None: all of them)
    poll_budget: int | None = None
    #: pass polls on until one answer says the task is running (Runway ``RUNNING``), spoil after
    from_running: bool = False
    seen_running: bool = False
    retry_after: float = 7200.0
    server: TestServer | None = None
    spoiled: Counter[str] = field(default_factory=Counter)
    passed: Counter[str] = field(default_factory=Counter)
    #: taskUUIDs (Runware) or task ids asked about by spoiled or passed polls
    asked: Counter[str] = field(default_factory=Counter)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def heal(self) -> None:
        """The outage is over: everything passes from now on."""
        self.polls = self.cancels = self.submits = None
        self.drop_submits = False


def kind_of(method: str, path: str, body: Any) -> tuple[str, list[str]]:
    """("poll" | "cancel" | "submit" | "other", the task ids a poll asks about)."""
    if path.startswith("/v1/tasks/"):
        task = path.rsplit("/", 1)[-1]
        return ("cancel" if method == "DELETE" else "poll"), [task]
    if path == "/v2/video/generations":
        return ("poll" if method == "GET" else "submit"), []
    if path == "/v1/image_to_video":
        return "submit", []
    if path == "/v1" and isinstance(body, list):
        types = {t.get("taskType") for t in body if isinstance(t, dict)}
        if "videoInference" in types:
            return "submit", []
        if "getResponse" in types:
            return "poll", [str(t.get("taskUUID")) for t in body if isinstance(t, dict)]
    return "other", []


async def _spoil(request: web.Request, front: Front, how: str, ids: list[str]) -> web.StreamResponse:
    if how == "5xx":
        return web.Response(status=502, body=_HTML, content_type="text/html")
    if how == "html":
        return web.Response(status=200, body=_HTML, content_type="text/html")
    if how == "huge":
        return web.Response(status=200, body=b'{"x": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    if how == "429":
        return web.Response(status=429, headers={"Retry-After": f"{front.retry_after:.0f}"})
    if how == "400":  # Runware's whole-request refusal: an error about no task in particular
        errors = {"errors": [{"code": "invalidRequestBody", "message": "bad request", "taskType": ""}]}
        return web.json_response(errors, status=400)
    if how == "queued":  # a Runway task that never leaves the queue
        return web.json_response({"id": ids[0] if ids else "?", "status": "PENDING"})
    return await _endless(request)


async def _endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    try:
        await response.write(b'{"status": "')
        while sent < SAFETY_STOP:
            await response.write(b"x" * PIECE)
            sent += PIECE
        await response.write_eof()
    except (ConnectionError, RuntimeError):  # the client hung up, as it should
        pass
    return response


def _front_app(front: Front, session: aiohttp.ClientSession) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        kind, ids = kind_of(request.method, request.path, body)
        front.asked.update(ids)
        how = _how(front, kind)
        if how is not None and not (kind == "submit" and not front.drop_submits):
            front.spoiled[kind] += 1
            return await _spoil(request, front, how, ids)
        passed = await _pass_on(request, raw, front, session)
        if how is not None:  # a submit that landed, its answer lost in the outage
            front.spoiled[kind] += 1
            return await _spoil(request, front, how, ids)
        front.passed[kind] += 1
        if kind == "poll" and b'"RUNNING"' in (passed.body or b""):  # type: ignore[operator]
            front.seen_running = True
        return passed

    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _how(front: Front, kind: str) -> str | None:
    if kind == "poll" and front.polls is not None:
        if front.from_running and not front.seen_running:
            return None
        if front.poll_budget is None:
            return front.polls
        if front.spoiled["poll"] < front.poll_budget:
            return front.polls
        return None
    return {"cancel": front.cancels, "submit": front.submits}.get(kind)


async def _pass_on(
    request: web.Request, raw: bytes, front: Front, session: aiohttp.ClientSession
) -> web.Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
    for name in ("X-Runway-Version", "Accept"):
        if name in request.headers:
            headers[name] = request.headers[name]
    url = front.upstream + request.path_qs
    async with session.request(request.method, url, data=raw or None, headers=headers) as resp:
        body = await resp.read()
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "retry-after")}
        return web.Response(status=resp.status, body=body, headers=keep)


@asynccontextmanager
async def hostile_front(upstream: str, **spoils: Any) -> AsyncIterator[Front]:
    """``async with hostile_front(sim.base_url, polls="5xx") as front:`` — on 127.0.0.1, a free port."""
    front = Front(upstream=upstream, **spoils)
    async with aiohttp.ClientSession() as session:
        front.server = TestServer(_front_app(front, session), host="127.0.0.1")
        await front.server.start_server()
        try:
            yield front
        finally:
            await front.server.close()
