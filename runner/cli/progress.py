"""Live progress, fed by engine events: a rich live view on a terminal, plain lines otherwise.

The CLI owns the console and hands it in; this module only decides what to show. On a terminal
the view is a small table redrawn in place (takes queued / in flight / downloading / done /
failed, spend, elapsed, ETA). Piped to a file or a CI log, it writes one line per event that
matters and a summary line every ``every`` seconds, so an overnight log stays readable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from runner.engine.events import Event, EventKind, TakeEnd
from runner.providers.base import TaskState
from runner.textcheck import strip_controls


@dataclass
class Counts:
    total: int = 0
    skipped: int = 0
    submitting: int = 0
    queued: int = 0
    running: int = 0
    downloading: int = 0
    done: int = 0
    failed: int = 0
    spent_usd: float = 0.0

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def in_flight(self) -> int:
        return self.submitting + self.queued + self.running


@dataclass
class ShotCounts:
    total: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    spent_usd: float = 0.0


class Progress:
    """Subscriber: keeps counts per take phase (and per shot) and renders them."""

    def __init__(
        self, console: Console, *, every: float = 30.0, shots: Mapping[str, int] | None = None
    ) -> None:
        self.console = console
        self.counts = Counts()
        self.shots = {name: ShotCounts(total=n) for name, n in (shots or {}).items()}
        self._phase: dict[str, str] = {}
        self._started = time.monotonic()
        self._every = every
        self._last_line = self._started
        self._live: Live | None = None

    @contextmanager
    def live(self) -> Iterator[Progress]:
        """Show the live view for the duration of the block (real terminals only; TERM=dumb: lines)."""
        if not self.console.is_terminal or self.console.is_dumb_terminal:
            yield self
            return
        with Live(
            console=self.console, get_renderable=self.render, refresh_per_second=4, transient=True
        ) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def __call__(self, event: Event) -> None:
        self._count(event)
        if self._live is None:
            self._plain(event)
        elif _worth_a_line_above_the_table(event):
            self._live.console.print(_shown(event), highlight=False, markup=False, soft_wrap=True)

    def _count(self, event: Event) -> None:
        c = self.counts
        if event.kind is EventKind.RUN_STARTED:
            c.total = int(event.message or 0)
        elif event.kind is EventKind.SKIPPED:
            c.skipped += 1
        elif event.take is not None:
            self._move(event.take.label, _phase_of(event))
            self._per_shot(event)
        if event.kind is EventKind.FINISHED and event.outcome is not None:
            c.spent_usd += event.outcome.cost_usd or 0.0

    def _per_shot(self, event: Event) -> None:
        assert event.take is not None
        shot = self.shots.setdefault(event.take.shot, ShotCounts())
        if event.kind is EventKind.SUBMITTING:
            shot.in_flight += 1
        elif event.kind is EventKind.FINISHED and event.outcome is not None:
            shot.in_flight = max(0, shot.in_flight - 1)
            shot.spent_usd += event.outcome.cost_usd or 0.0
            if event.outcome.status is TakeEnd.DONE:
                shot.done += 1
            else:
                shot.failed += 1

    def _move(self, label: str, phase: str | None) -> None:
        if phase is None:
            return
        old = self._phase.get(label)
        if old is not None:
            setattr(self.counts, old, getattr(self.counts, old) - 1)
        setattr(self.counts, phase, getattr(self.counts, phase) + 1)
        self._phase[label] = phase

    def _plain(self, event: Event) -> None:
        line = _shown(event)
        if line:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        now = time.monotonic()
        if now - self._last_line >= self._every:
            self._last_line = now
            self.console.print(self.summary_line(), highlight=False, markup=False, soft_wrap=True)

    def eta_s(self) -> float | None:
        c = self.counts
        if c.finished == 0:
            return None
        remaining = c.total - c.finished
        return (time.monotonic() - self._started) / c.finished * remaining

    def summary_line(self) -> str:
        c = self.counts
        eta = self.eta_s()
        return (
            f"[{_clock(time.monotonic() - self._started)}] {c.done}/{c.total} done · {c.failed} failed · "
            f"{c.in_flight} in flight · {c.downloading} downloading · ${c.spent_usd:.2f}"
            + (f" · ETA {_clock(eta)}" if eta is not None else "")
        )

    def render(self) -> Group:
        """Totals, then a row per shot; at any width whole columns are dropped, never values cut."""
        return Group(self._fit(self._totals_columns()), self._fit(self._shot_columns()))

    def _totals_columns(self) -> list[tuple[str, list[str]]]:
        c = self.counts
        eta = self.eta_s()
        waiting = max(0, c.total - c.finished - c.in_flight - c.downloading)
        return [  # most important first: the last ones go first when the terminal is narrow
            ("done", [f"{c.done}/{c.total}"]),
            ("failed", [str(c.failed)]),
            ("in flight", [str(c.in_flight)]),
            ("spent", [f"${c.spent_usd:.2f}"]),
            ("queued", [str(waiting)]),
            ("ETA", [_clock(eta) if eta is not None else "–"]),
            ("downloading", [str(c.downloading)]),
            ("elapsed", [_clock(time.monotonic() - self._started)]),
            ("skipped", [str(c.skipped)]),
        ]

    def _shot_columns(self) -> list[tuple[str, list[str]]]:
        shots = list(self.shots.items())
        return [
            ("shot", [name for name, _ in shots]),
            ("done", [f"{s.done}/{s.total}" for _, s in shots]),
            ("spent", [f"${s.spent_usd:.2f}" for _, s in shots]),
            ("in flight", [str(s.in_flight) for _, s in shots]),
            ("failed", [str(s.failed) for _, s in shots]),
        ]

    def _fit(self, columns: list[tuple[str, list[str]]]) -> Table:
        keep = len(columns)
        while keep > 1 and _natural_width(columns[:keep]) > self.console.width:
            keep -= 1
        return _table(columns[:keep])


#: A shot's name may fold onto a second line past this many characters; numbers never do.
SHOT_FOLD = 20


def _natural_width(columns: list[tuple[str, list[str]]]) -> int:
    """Characters the columns need side by side, values whole (box.SIMPLE: 3 between columns)."""
    widths = [max(len(name), *(len(v) for v in values)) if values else len(name) for name, values in columns]
    widths = [
        min(w, SHOT_FOLD) if name == "shot" else w for w, (name, _) in zip(widths, columns, strict=True)
    ]
    return sum(widths) + 3 * (len(columns) - 1) + 2


def _table(columns: list[tuple[str, list[str]]]) -> Table:
    table = Table(show_header=True, header_style="bold", box=box.SIMPLE, pad_edge=False)
    for name, _ in columns:
        if name == "shot":
            table.add_column(name, justify="left", overflow="fold", min_width=min(SHOT_FOLD, len(name)))
        else:
            table.add_column(name, justify="right", no_wrap=True, overflow="ignore")
    for row in zip(*(values for _, values in columns), strict=True):
        table.add_row(*row)
    return table


def _worth_a_line_above_the_table(event: Event) -> bool:
    """On a terminal the table shows the routine; failures and warnings still get their own line."""
    if event.kind is EventKind.FINISHED:
        return event.outcome is not None and event.outcome.status is not TakeEnd.DONE
    return event.kind in (EventKind.WARNING, EventKind.STOPPING)


def _phase_of(event: Event) -> str | None:
    if event.kind is EventKind.SUBMITTING:
        return "submitting"
    if event.kind is EventKind.STATUS and event.state is not None:
        return "running" if event.state is TaskState.RUNNING else "queued"
    if event.kind is EventKind.DOWNLOADING:
        return "downloading"
    if event.kind is EventKind.FINISHED and event.outcome is not None:
        return "done" if event.outcome.status is TakeEnd.DONE else "failed"
    return None


def _shown(event: Event) -> str | None:
    """The event's line, safe for a terminal whatever reached the event (provider text is cleaned
    where it enters, :mod:`runner.providers.guard`; this is the belt to those braces)."""
    line = _line_of(event)
    return strip_controls(line) if line else line


def _line_of(event: Event) -> str | None:
    label = event.take.label if event.take else ""
    if event.kind is EventKind.SUBMITTED:
        return f"submitted  {label}  ({event.take.provider if event.take else ''} task {event.handle})"
    if event.kind is EventKind.FINISHED and event.outcome is not None:
        o = event.outcome
        if o.status is TakeEnd.DONE:
            return f"done       {label}  {o.output}  ${o.cost_usd or 0:.4f} ({o.cost_source})"
        return f"{o.status.value:<10} {label}  {o.failure_kind}: {o.failure_message}"
    if event.kind in (EventKind.RETRYING, EventKind.WARNING, EventKind.STOPPING):
        return f"{event.kind.value:<10} {label}  {event.message}".rstrip()
    return None


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
