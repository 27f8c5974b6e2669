"""In-process stand-ins for the pure-logic tests: a virtual clock and fakes at the Provider seam.

Nothing here touches aiohttp. :class:`VirtualClock` implements the runner's ``Clock`` protocol in
virtual time: a ``sleep`` parks its caller, and :meth:`VirtualClock.drive` (run as a background
task) lets every coroutine run until all of them are parked, then jumps time to the earliest
wake-up. No test built on it depends on how fast the machine is.

:class:`FakeProvider` implements :class:`runner.providers.base.Provider` with a scripted ``poll``;
:class:`Recording` wraps any real provider (an adapter talking to the simulator) and notes, in the
engine's clock time, every submit and every poll that goes through the seam.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from runner.clock import Clock
from runner.engine.download import Downloaded
from runner.engine.records import spec_of
from runner.errors import FailureKind
from runner.manifest.takes import Take
from runner.providers.base import Provider, SubmitRequest, Submitted, TaskState, TaskStatus
from runner.store.group import AsyncJournal
from runner.store.records import Record
from runner.store.sqlite import Journal

#: Checkpoints the driver yields before deciding that every task is parked. Each checkpoint lets
#: every runnable task take one step; the chains in these tests are a handful of steps long.
IDLE_SPINS = 60


class VirtualClock:
    """A ``Clock`` whose time moves only when every task is waiting on it."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        entry = (self.t + seconds, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        try:
            await entry[2].wait()
        finally:
            if not entry[2].is_set():  # cancelled: forget the wake-up
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    async def _settle(self) -> None:
        for _ in range(IDLE_SPINS):
            await anyio.lowlevel.checkpoint()

    async def drive(self) -> None:
        """Forever: let everything run until parked, then wake the earliest sleeper(s)."""
        while True:
            await self._settle()
            if not self._sleepers:
                continue
            wake = self._sleepers[0][0]
            self.t = max(self.t, wake)
            while self._sleepers and self._sleepers[0][0] <= self.t:
                heapq.heappop(self._sleepers)[2].set()


@asynccontextmanager
async def driven(clock: VirtualClock) -> AsyncIterator[TaskGroup]:
    """A task group whose virtual clock is driven; everything in it is cancelled on exit."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.drive)
        try:
            yield tg
        finally:
            tg.cancel_scope.cancel()


def status(handle: str, state: TaskState = TaskState.RUNNING) -> TaskStatus:
    """A neutral status for ``handle``."""
    return TaskStatus(handle=handle, state=state, raw_status=state.value)


def moderated(handle: str) -> TaskStatus:
    """The FAILED status of a task refused by moderation (no download follows it)."""
    return TaskStatus(
        handle=handle,
        state=TaskState.FAILED,
        raw_status="FAILED",
        failure_kind=FailureKind.MODERATION,
        failure_message="SAFETY.INPUT.IMAGE",
    )


#: A scripted answer to one poll request: (number of the call, 1-based; handles) → statuses.
Answerer = Callable[[int, Sequence[str]], Mapping[str, TaskStatus]]


def all_running(_call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
    return {h: status(h) for h in handles}


@dataclass
class FakeProvider:
    """A Provider whose polls are answered by a script and noted with the clock's time."""

    clock: Clock
    answer: Answerer = all_running
    name: str = "fake"
    max_poll_batch: int = 1
    min_poll_interval: float = 0.0
    resend_safe: bool = True
    can_cancel: bool = False
    #: seconds each submit takes (virtual), so takes can be made to land at chosen times
    submit_latency: Callable[[SubmitRequest], float] = lambda _request: 0.0
    polls: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    submits: list[tuple[float, str]] = field(default_factory=list)

    def planned_handle(self, request: SubmitRequest) -> str | None:
        return None

    async def submit(self, request: SubmitRequest) -> Submitted:
        await self.clock.sleep(self.submit_latency(request))
        handle = f"task-{request.take.label}"
        self.submits.append((self.clock.now(), handle))
        return Submitted(handle=handle)

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        self.polls.append((self.clock.now(), tuple(handles)))
        await anyio.lowlevel.checkpoint()
        return self.answer(len(self.polls), handles)

    async def cancel(self, handle: str) -> bool:
        return False


class Recording:
    """Wraps a provider at the seam; notes (clock time, handles) of each poll and each submit."""

    def __init__(self, inner: Provider, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.name = inner.name
        self.max_poll_batch = inner.max_poll_batch
        self.min_poll_interval = inner.min_poll_interval
        self.resend_safe = inner.resend_safe
        self.can_cancel = inner.can_cancel
        self.polls: list[tuple[float, tuple[str, ...]]] = []
        self.submits: list[tuple[float, str]] = []

    def planned_handle(self, request: SubmitRequest) -> str | None:
        return self.inner.planned_handle(request)

    async def submit(self, request: SubmitRequest) -> Submitted:
        self.submits.append((self.clock.now(), request.take.label))
        return await self.inner.submit(request)

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        self.polls.append((self.clock.now(), tuple(handles)))
        return await self.inner.poll(handles)

    async def cancel(self, handle: str) -> bool:
        return await self.inner.cancel(handle)


def poll_gaps(polls: Sequence[tuple[float, tuple[str, ...]]]) -> dict[str, list[float]]:
    """For each handle, the clock time between consecutive polls that included it."""
    last: dict[str, float] = {}
    gaps: dict[str, list[float]] = {}
    for when, handles in polls:
        for handle in handles:
            if handle in last:
                gaps.setdefault(handle, []).append(when - last[handle])
            last[handle] = when
    return gaps


class NoDownloads:
    """A Downloader for tests in which no take may get as far as a download."""

    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        raise AssertionError(f"unexpected download of {take} from {url}")


def open_journal(run_dir: Path, takes: Sequence[Take]) -> tuple[AsyncJournal, dict[str, Record]]:
    """A fresh journal in ``run_dir`` with ``takes`` planned: what app.run_takes does first.

    Inline (no worker thread), so a VirtualClock sees every step of the engine.
    """
    journal = Journal.open(run_dir)
    records = journal.plan((t.key, t.label, t.provider, spec_of(t), t.relpath) for t in takes)
    return AsyncJournal(journal, inline=True), records
