"""The run: submit under each provider's slots, poll in parallel, download as results land.

One task group holds a poller per provider lane and a feeder per lane; a feeder starts a take
only when a slot is free, so a manifest of 10,000 takes never has more coroutines than slots plus
downloads. A take reads top to bottom — submit, wait for a terminal status, release the slot,
download, record — and every change of its state goes out as an :class:`~runner.events.Event`
(progress, ledger and log subscribe; the durable journal will too).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp
import anyio

from runner.clock import REAL_TIME, Clock
from runner.download import Downloaded, download
from runner.errors import (
    AmbiguousSubmitError,
    DownloadError,
    ExpiredURLError,
    FailureKind,
    ProviderError,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.events import Bus, Event, Kind, Outcome, TakeStatus
from runner.flight import Flight, NotStarted, TakeFailed, done_outcome, failed_outcome
from runner.gate import Gate, StopReason
from runner.lanes import Lane, LaneOptions, group_of
from runner.ledger import History
from runner.polling import Backoff
from runner.providers.base import Provider, SubmitRequest, Submitted, TaskState, TaskStatus
from runner.takes import ImageRef, Take

STOPPING_KINDS = frozenset({FailureKind.AUTH, FailureKind.CREDITS})


class Encoder(Protocol):
    def encode(self, ref: ImageRef) -> str: ...


@dataclass(frozen=True)
class EngineOptions:
    lanes: Mapping[str, LaneOptions]
    downloads: int = 4
    take_timeout: float = 900.0  # seconds the provider reports a task RUNNING
    submit_attempts: int = 8
    download_attempts: int = 6
    url_refreshes: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    retry_failed: bool = False
    clock: Clock = REAL_TIME
    seed: int = 0


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    not_started: int = 0
    spent_usd: float = 0.0
    stopped: StopReason | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.cancelled == 0 and self.not_started == 0


class Engine:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        session: aiohttp.ClientSession,
        run_dir: Path,
        encoder: Encoder,
        history: History,
        bus: Bus,
        options: EngineOptions,
        gate: Gate | None = None,
    ) -> None:
        self._opt = options
        self._clock = options.clock
        self._rng = random.Random(options.seed)
        self._bus = bus
        self._lanes = {name: self._lane(p, options) for name, p in providers.items()}
        self._session = session
        self._run_dir = run_dir
        self._encoder = encoder
        self._history = history
        self._downloads = anyio.CapacityLimiter(options.downloads)
        self._gate = gate or Gate(budget_usd=None, deadline=None)
        self.summary = Summary()

    def _lane(self, provider: Provider, options: EngineOptions) -> Lane:
        def on_retry(message: str) -> None:
            self._bus.emit(Event(Kind.RETRYING, message=f"{provider.name}: {message}"))

        rng = random.Random(f"{options.seed}/{provider.name}")
        return Lane(provider, options.lanes[provider.name], options.clock, rng, on_retry)

    def stop(self, reason: StopReason, message: str) -> None:
        """Submit nothing new; takes in flight still finish and download (Ctrl-C, budget, deadline).

        The first reason sticks, except that an interrupt overrides: the user asked to stop.
        """
        if self.summary.stopped is None or reason is StopReason.INTERRUPTED:
            self.summary.stopped = reason
            self._bus.emit(Event(Kind.STOPPING, message=message))

    async def run(self, takes: Iterable[Take]) -> Summary:
        queues = self._admit(takes)
        self._bus.emit(Event(Kind.RUN_STARTED, message=str(sum(len(q) for q in queues.values()))))
        async with anyio.create_task_group() as pollers:
            for lane in self._lanes.values():
                pollers.start_soon(lane.poller.run)
            async with anyio.create_task_group() as feeders:
                for name, queue in queues.items():
                    feeders.start_soon(self._feed, self._lanes[name], queue)
            pollers.cancel_scope.cancel()
        self._bus.emit(Event(Kind.RUN_FINISHED, message=self.summary.stopped or ""))
        return self.summary

    def _admit(self, takes: Iterable[Take]) -> dict[str, deque[Take]]:
        queues: dict[str, deque[Take]] = {name: deque() for name in self._lanes}
        for take in takes:
            sticky = None if self._opt.retry_failed else self._history.sticky_failure(take)
            if self._history.done(take) or sticky:
                self.summary.skipped += 1
                why = "done in an earlier run" if sticky is None else f"failed earlier ({sticky})"
                self._bus.emit(Event(Kind.SKIPPED, take, message=why))
            else:
                queues[take.provider].append(take)
        return queues

    async def _feed(self, lane: Lane, queue: deque[Take]) -> None:
        async with anyio.create_task_group() as tg:
            while queue:
                await lane.slots.acquire()
                if not self._may_start(lane, queue[0]):
                    await lane.slots.release(clean=False)
                    break
                tg.start_soon(self._run_take, lane, queue.popleft())
        if queue:
            self.summary.not_started += len(queue)
            why = lane.closed_reason or self.summary.stopped
            self._bus.emit(
                Event(Kind.WARNING, message=f"{lane.name}: {len(queue)} takes not started ({why})")
            )

    def _may_start(self, lane: Lane, take: Take) -> bool:
        if self.summary.stopped or lane.closed_reason:
            return False
        refusal = self._gate.admit(take)
        if refusal is not None:
            self.stop(refusal.reason, refusal.message)
            return False
        return True

    async def _run_take(self, lane: Lane, take: Take) -> None:
        flight = Flight(take, attempt=self._history.next_attempt(take))
        try:
            status = await self._generate(lane, flight)
            outcome = await self._collect(lane, flight, status)
        except NotStarted as why:
            self._gate.release(take)
            self.summary.not_started += 1
            self._bus.emit(Event(Kind.WARNING, take, message=f"not submitted: {why}"))
            return
        except TakeFailed as failure:
            outcome = failed_outcome(flight, failure)
        self._finish(outcome)

    async def _generate(self, lane: Lane, flight: Flight) -> TaskStatus:
        """Submit and wait for a terminal status, holding one of the lane's slots throughout."""
        clean = False
        try:
            take = flight.take
            image = self._encoder.encode(take.image)
            last = self._encoder.encode(take.last_image) if take.last_image else None
            request = SubmitRequest(take, image=image, last_image=last, attempt=flight.attempt)
            flight.handle = (await self._submit(lane, flight, request)).handle
            status = await self._await_terminal(lane, flight)
            clean = True
            return status
        finally:
            with anyio.CancelScope(shield=True):
                await lane.slots.release(clean=clean)

    async def _submit(self, lane: Lane, flight: Flight, request: SubmitRequest) -> Submitted:
        self._bus.emit(Event(Kind.SUBMITTING, flight.take, message=f"attempt {flight.attempt}"))
        error: ProviderError | None = None
        for attempt in range(1, self._opt.submit_attempts + 1):
            await lane.rate.wait()
            self._check_may_send(lane, error)
            flight.submits = attempt
            try:
                submitted = await lane.provider.submit(request)
            except TerminalError as exc:
                raise self._terminal(lane, exc) from exc
            except AmbiguousSubmitError as exc:
                if not lane.provider.resend_safe:
                    raise self._uncertain(exc) from exc
                error = exc
            except RateLimitedError as exc:
                await lane.slots.shrink()
                error = exc
            except TransientError as exc:
                error = exc
            else:
                self._submitted(flight, submitted)
                return submitted
            await self._pause(flight, "submit", attempt, error)
        raise TakeFailed(FailureKind.PROVIDER, f"submit failed {self._opt.submit_attempts} times: {error}")

    def _check_may_send(self, lane: Lane, previous: ProviderError | None) -> None:
        """A bad key or Ctrl-C stops submits still waiting, unless an earlier send may have landed."""
        if isinstance(previous, AmbiguousSubmitError):
            return  # a resend-safe provider: resending is how we learn whether it landed
        why = lane.closed_reason or (
            self.summary.stopped if self.summary.stopped is StopReason.INTERRUPTED else None
        )
        if why:
            raise NotStarted(str(why))

    def _submitted(self, flight: Flight, submitted: Submitted) -> None:
        flight.submitted_at = datetime.now(UTC)
        flight.submitted_clock = self._clock.now()
        if submitted.already_existed:
            flight.flags.append("resumed")
            self._bus.emit(Event(Kind.WARNING, flight.take, message="already submitted earlier; polling it"))
        self._bus.emit(Event(Kind.SUBMITTED, flight.take, handle=submitted.handle))

    async def _await_terminal(self, lane: Lane, flight: Flight) -> TaskStatus:
        schedule = lane.schedule_for(flight.take)
        running = 0.0
        seen: tuple[TaskState | None, float | None] = (None, None)
        while True:
            before = self._clock.now()
            status = await self._poll(lane, flight, before + schedule.next_delay())
            if seen[0] is TaskState.RUNNING:
                running += self._clock.now() - flight.last_seen
            flight.last_seen = self._clock.now()
            schedule.observe(flight.last_seen - flight.submitted_clock, status.progress)
            if (status.state, status.progress) != seen:
                seen = (status.state, status.progress)
                self._bus.emit(Event(Kind.STATUS, flight.take, state=status.state, progress=status.progress))
            if status.state.terminal:
                return self._terminal_status(lane, flight, status)
            flight.last_unfinished = flight.last_seen
            if running > self._opt.take_timeout:
                raise TakeFailed(FailureKind.TIMEOUT, f"still running after {running:.0f} s at the provider")

    def _terminal_status(self, lane: Lane, flight: Flight, status: TaskStatus) -> TaskStatus:
        flight.generation_s = self._clock.now() - flight.submitted_clock
        if status.state is TaskState.SUCCEEDED:
            unfinished = flight.submitted_clock if flight.last_unfinished is None else flight.last_unfinished
            lane.times.record(group_of(flight.take), unfinished - flight.submitted_clock, flight.generation_s)
            return status
        cancelled = status.state is TaskState.CANCELLED
        kind = status.failure_kind or FailureKind.PROVIDER
        failure = TakeFailed(kind, status.failure_message or status.raw_status, cancelled=cancelled)
        failure.cost_usd = status.cost_usd
        raise failure

    async def _poll(self, lane: Lane, flight: Flight, when: float) -> TaskStatus:
        assert flight.handle is not None
        not_before = flight.last_poll + lane.provider.min_poll_interval
        try:
            status = await lane.poller.status_at(flight.handle, max(when, not_before), not_before=not_before)
        except TerminalError as exc:
            raise self._terminal(lane, exc) from exc
        except ProviderError as exc:  # the poller retries transient trouble itself; this is a last resort
            raise TakeFailed(FailureKind.PROVIDER, str(exc)) from exc
        flight.last_poll = self._clock.now()
        return status

    async def _collect(self, lane: Lane, flight: Flight, status: TaskStatus) -> Outcome:
        """Download the clip, refreshing an expired URL by polling the task again."""
        url, refreshes = status.output_url, 0
        error: Exception | None = None
        for attempt in range(1, self._opt.download_attempts + 1):
            if url is None:
                raise TakeFailed(FailureKind.PROVIDER, "task succeeded without an output URL")
            try:
                got = await self._download(flight, url)
            except ExpiredURLError as exc:
                refreshes += 1
                if refreshes > self._opt.url_refreshes:
                    raise TakeFailed(
                        FailureKind.DOWNLOAD, f"URL still expired after refreshing: {exc}"
                    ) from exc
                url = (await self._poll(lane, flight, self._clock.now())).output_url
                continue
            except (TransientError, DownloadError) as exc:
                error = exc
                await self._pause(flight, "download", attempt, exc)
                continue
            return done_outcome(flight, status, got)
        raise TakeFailed(
            FailureKind.DOWNLOAD, f"download failed {self._opt.download_attempts} times: {error}"
        )

    async def _download(self, flight: Flight, url: str) -> Downloaded:
        take = flight.take
        async with self._downloads:
            self._bus.emit(Event(Kind.DOWNLOADING, take))
            return await download(
                self._session, url, self._run_dir / take.relpath, provider=take.provider, take=take.label
            )

    async def _pause(self, flight: Flight, what: str, attempt: int, error: Exception | None) -> None:
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        delay = self._opt.backoff.delay(attempt, self._rng, retry_after)
        self._bus.emit(
            Event(Kind.RETRYING, flight.take, message=f"{what} retry {attempt} in {delay:.1f}s: {error}")
        )
        await self._clock.sleep(delay)

    def _terminal(self, lane: Lane, exc: TerminalError) -> TakeFailed:
        if exc.kind in STOPPING_KINDS:
            lane.close(f"{exc.kind.value}: {exc}")
        return TakeFailed(exc.kind, str(exc))

    @staticmethod
    def _uncertain(exc: AmbiguousSubmitError) -> TakeFailed:
        message = f"submit may have landed but no answer came ({exc}); not resent, to avoid paying twice"
        return TakeFailed(FailureKind.UNCERTAIN, message, flags=("uncertain",))

    def _finish(self, outcome: Outcome) -> None:
        s = self.summary
        if outcome.status is TakeStatus.DONE:
            s.done += 1
        elif outcome.status is TakeStatus.CANCELLED:
            s.cancelled += 1
        else:
            s.failed += 1
        s.spent_usd += outcome.cost_usd or 0.0
        unbilled = outcome.cost_usd is None and outcome.task_id is None  # never accepted anywhere
        self._gate.settle(outcome.take, 0.0 if unbilled else outcome.cost_usd)
        self._bus.emit(Event(Kind.FINISHED, outcome.take, outcome=outcome))
