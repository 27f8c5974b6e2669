"""The simulator as a server: the aiohttp app, the embedded runner for tests, the standalone one.

Three ways in: tests and ``previz run --simulate`` use :func:`running_simulator` (loopback, a free
port, torn down on exit); ``previz simulate`` uses :func:`serve` (blocking until Ctrl-C or
SIGTERM, which end it quietly); anything else can mount :func:`build_app`.

The embedded one is aiohttp's ``TestServer``; :func:`serve` keeps ``AppRunner`` + ``TCPSite``,
because a long-running server on a chosen ``--host`` should listen on every address that name
resolves to (``localhost`` is often both 127.0.0.1 and ::1), where ``TestServer`` binds a single
socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from runner.simulator import aiml, files, runware, runway
from runner.simulator.config import SimConfig
from runner.simulator.state import World
from runner.simulator.wire import WORLD, world_of

#: Data URIs up to Runway's 5 MB limit (and a margin to refuse bigger ones politely) must fit.
MAX_BODY = 32 * 1024 * 1024
#: How long shutdown waits for in-flight handlers (a hanging lost answer) before cancelling them.
SHUTDOWN_TIMEOUT = 1.0


async def _stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(world_of(request).stats())


async def _task_times(request: web.Request) -> web.StreamResponse:
    return web.json_response(world_of(request).task_times())


def build_app(config: SimConfig) -> web.Application:
    """An app serving all three providers, the clips and ``/_sim/stats`` on one origin."""
    app = web.Application(client_max_size=MAX_BODY)
    app[WORLD] = World(config)
    aiml.add_routes(app)
    runware.add_routes(app)
    runway.add_routes(app)
    files.add_routes(app)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/tasks", _task_times)
    return app


class Simulator:
    """A running simulator, as tests see it."""

    def __init__(self, config: SimConfig, app: web.Application, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self._world = app[WORLD]

    @property
    def keys(self) -> dict[str, str]:
        return dict(self.config.keys)

    def stats(self) -> dict[str, Any]:
        """The same document as ``GET /_sim/stats``."""
        return self._world.stats()


#: Both servers: no access log, the same shutdown grace, handlers run to their end.
_RUNNER_OPTIONS: dict[str, Any] = {
    "access_log": None,
    "shutdown_timeout": SHUTDOWN_TIMEOUT,
    "handler_cancellation": False,
}


class _SimServer(TestServer):
    """``TestServer`` without its handler cancellation: like a real API, the simulator finishes a
    request it received even when the client hangs up (a slow submit still lands)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs.update(_RUNNER_OPTIONS)  # over TestServer's handler_cancellation=True
        return web.AppRunner(self.app, **kwargs)


@contextlib.asynccontextmanager
async def running_simulator(config: SimConfig) -> AsyncIterator[Simulator]:
    """``async with running_simulator(config) as sim:`` — served on 127.0.0.1, a free port."""
    app = build_app(config)
    server = _SimServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Simulator(config, app, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


async def _serve_until_stopped(
    config: SimConfig, host: str, port: int, on_ready: Callable[[str], None] | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # Ctrl-C too: one clean way out
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
    runner = web.AppRunner(build_app(config), **_RUNNER_OPTIONS)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        if on_ready is not None:
            on_ready(f"http://{shown}:{bound_port}")
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(
    config: SimConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; ``on_ready(base_url)`` once listening. Returns quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(config, host, port, on_ready))
