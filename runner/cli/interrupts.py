"""How a run is stopped from outside: interrupts, and a terminal that goes away.

Why its own module: the engine only knows ``engine.stop(reason, message)``; which signals count,
what a second one means, and when a vanished terminal is a stop (not under ``nohup``) are the
command line's business, and they sit beside the one place that runs the engine under them.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping

import anyio

from runner.cli.terminal import TerminalWatch
from runner.engine.core import Engine
from runner.engine.gate import StopReason
from runner.manifest.takes import Take
from runner.store.base import JournalWriteError
from runner.store.records import Record


async def drive(
    engine: Engine, takes: tuple[Take, ...], records: Mapping[str, Record], terminal: TerminalWatch | None
) -> None:
    """The engine, with the interrupt handler beside it; a journal that fails ends the run whole."""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_on_signals, engine, tg.cancel_scope)
            if terminal is not None and not terminal.outlive:
                tg.start_soon(_on_hangup, engine, terminal)
            await engine.run(takes, records)
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failed = group.subgroup(JournalWriteError)
        if failed is None:
            raise
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _interrupts() -> list[signal.Signals]:
    """Ctrl-C, SIGTERM and — where the platform has it — SIGHUP (a closed SSH session).

    A SIGHUP ignored when previz started (``nohup``, some ``setsid`` or tmux set-ups) stays
    ignored: the user asked for the night to outlive the terminal, and a handler would undo that.
    """
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    found = [getattr(signal, n) for n in names if hasattr(signal, n)]
    return [s for s in found if s.name != "SIGHUP" or signal.getsignal(s) is not signal.SIG_IGN]


async def _on_signals(engine: Engine, scope: anyio.CancelScope) -> None:
    """First interrupt: stop submitting and drain. Second: stop at once (the journal keeps the rest)."""
    try:
        receiver = anyio.open_signal_receiver(*_interrupts())
    except NotImplementedError:  # Windows: Ctrl-C arrives as KeyboardInterrupt instead
        return
    with receiver as signals:
        async for _ in signals:
            if engine.summary.stopped is StopReason.INTERRUPTED:
                scope.cancel()
                return
            engine.stop(
                StopReason.INTERRUPTED, "interrupted: finishing takes in flight; again to stop at once"
            )


async def _on_hangup(engine: Engine, terminal: TerminalWatch) -> None:
    """The terminal went away (runner.cli.terminal): drain as on SIGHUP, unless already stopping."""
    # The notice comes from whichever thread wrote (rich redraws from its own): a threading flag,
    # looked at five times a second, not an anyio.Event that only the loop's thread may set.
    while not terminal.gone:  # noqa: ASYNC110
        await anyio.sleep(0.2)
    if engine.summary.stopped is not StopReason.INTERRUPTED:
        engine.stop(StopReason.INTERRUPTED, "the terminal went away: finishing takes in flight (see run.log)")
