"""HTTP plumbing shared by the three provider front-ends: keys, bodies, take ids, injected faults.

Why one place: every provider answers faults the same way at the transport level — a delay, a
dropped connection, or an error status (each in its own body shape, passed in as a callback) —
and the way a request body becomes a take id must be the same everywhere, because the stats
promise it to other tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from runner.simulator.faults import Decision
from runner.simulator.state import World

WORLD = web.AppKey("previz_sim_world", World)

ErrorRenderer = Callable[[int, str], web.Response]

_FAULT_MESSAGES = {
    "5xx": "The service is temporarily unavailable, please retry",
    "429": "Too many requests, please slow down and retry",
}


def world_of(request: web.Request) -> World:
    return request.app[WORLD]


def bearer(request: web.Request) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def take_id(body: object) -> str:
    """The take a body asks for: sha256 of its canonical JSON.

    ``hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()``
    — so two sends of the same request (a retry) count as the same take.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def read_json(request: web.Request) -> tuple[bool, Any]:
    """(True, value) for a JSON body; (False, None) when it does not parse."""
    raw = await request.read()
    try:
        return True, json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False, None


def origin(request: web.Request) -> str:
    """Scheme and host the client used, so result URLs point back at this server."""
    return f"{request.scheme}://{request.host}"


def drop_connection(request: web.Request) -> NoReturn:
    """Close the connection with no answer at all (a reset, or a lost answer)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise web.HTTPServiceUnavailable()  # never reaches the client: the socket is gone


async def sleep_sim(world: World, seconds: float) -> None:
    """Wait ``seconds`` of simulated time."""
    if seconds > 0:
        await asyncio.sleep(world.config.sim_to_real(seconds))


async def answer_fault(
    request: web.Request, world: World, decision: Decision, render: ErrorRenderer
) -> web.Response | None:
    """Apply a fault decision: maybe wait, then drop, or return the error answer (None = no error)."""
    await sleep_sim(world, decision.delay)
    if decision.error is None:
        return None
    if decision.error == "reset":
        drop_connection(request)
    response = render(decision.status, _FAULT_MESSAGES[decision.error])
    if decision.retry_after is not None:
        response.headers["Retry-After"] = str(decision.retry_after)
    return response


async def lose_answer(request: web.Request, world: World) -> None:
    """The submit landed but its answer is lost: hang ``hang_seconds`` (real), or drop at once."""
    hang = world.config.faults.hang_seconds
    if hang > 0:
        await asyncio.sleep(hang)
        return
    drop_connection(request)
