"""Waiting for a task's end at the provider: the polls, the limits on waiting, what the end says.

Why apart from the engine's take's life: this is the one loop a take spends most of its minute in
— poll on the lane's schedule, learn from each answer, give up past the running-time timeout or
the pending limit (:mod:`runner.engine.unfinished` decides how the take then ends) — and it needs
nothing of the engine but the lane, the clock, the limits and the journal for the paid cost.
"""

from __future__ import annotations

import anyio

from runner.clock import Clock
from runner.engine.cost import decide_cost, failed_cost
from runner.engine.events import Bus, Event, EventKind
from runner.engine.flight import Job, Mode, TakeFailed
from runner.engine.gate import Gate
from runner.engine.lanes import Lane
from runner.engine.polling import PollSchedule
from runner.engine.sending import terminal_failure
from runner.engine.unfinished import Waited, lost_track, timed_out
from runner.errors import FailureKind, PollGaveUpError, ProviderError, TerminalError
from runner.providers.base import TaskState, TaskStatus
from runner.store.group import AsyncJournal


class TaskWatch:
    """Polls one take's task until it ends, within the run's limits on waiting."""

    def __init__(
        self,
        clock: Clock,
        take_timeout: float,
        pending_limit: float,
        gate: Gate,
        bus: Bus,
        journal: AsyncJournal,
    ) -> None:
        self._clock = clock
        self._take_timeout = take_timeout
        self._pending_limit = pending_limit
        self._gate = gate
        self._bus = bus
        self._journal = journal

    async def await_terminal(self, lane: Lane, job: Job) -> TaskStatus:
        """Poll until the task ends, or it runs past the take's timeout or queues past the
        pending limit (the take then ends as :mod:`runner.engine.unfinished` says)."""
        with lane.watching(job.take, job.submitted_clock, job.handle) as schedule:
            return await self._until_terminal(lane, job, schedule)

    async def _until_terminal(self, lane: Lane, job: Job, schedule: PollSchedule) -> TaskStatus:
        waited = Waited()
        seen: tuple[TaskState | None, float | None] = (None, None)
        job.last_seen = job.submitted_clock
        while True:
            before = self._clock.now()
            limits = (self._take_timeout, self._pending_limit, self._gate.seconds_left())
            patience = waited.patience(seen[0], *limits)
            status = await self.poll(lane, job, before + schedule.next_delay(), patience=patience)
            waited.add(seen[0], self._clock.now() - job.last_seen)
            job.last_seen = self._clock.now()
            schedule.observe(job.last_seen - job.submitted_clock, status.progress)
            if (status.state, status.progress) != seen:
                seen = (status.state, status.progress)
                self._bus.emit(
                    Event(EventKind.STATUS, job.take, state=status.state, progress=status.progress)
                )
            if status.state.terminal:
                return status
            job.last_pending = job.last_seen
            if waited.running > self._take_timeout:
                raise await timed_out(lane, job, self._bus, waited.running)
            if waited.queued > self._pending_limit:
                why = f"still {status.raw_status or status.state.value} after {waited.queued / 3600:.1f} h"
                raise await lost_track(lane, job, self._bus, f"{why} (the pending limit)")

    async def terminal_status(self, lane: Lane, job: Job, status: TaskStatus) -> TaskStatus:
        job.generation_s = self._clock.now() - job.submitted_clock if job.mode is not Mode.POLL else None
        if status.state is not TaskState.SUCCEEDED:
            kind = status.failure_kind or FailureKind.PROVIDER
            cost = failed_cost(status.cost_usd, job.estimate, accepted=True)
            cancelled = status.state is TaskState.CANCELLED
            message = status.failure_message or status.raw_status
            raise TakeFailed(kind, message, cost=cost, cancelled=cancelled, retryable=status.retryable)
        if job.generation_s is not None:  # the true time lies between the last "not yet" and now
            pending = job.submitted_clock if job.last_pending is None else job.last_pending
            lane.ended(job.take, job.submitted_clock, pending - job.submitted_clock, job.generation_s)
        job.paid = decide_cost(status.cost_usd, job.estimate)
        with anyio.CancelScope(shield=True):  # the provider billed: the cost must reach the disk
            await self._journal.update(
                job.take.key,
                state="succeeded",
                handle=job.handle,
                cost_usd=job.paid.usd,
                cost_source=job.paid.source,
                reserved_usd=job.paid.usd,
                generation_s=job.generation_s,
            )
        return status

    async def poll(self, lane: Lane, job: Job, when: float, *, patience: float = 0.0) -> TaskStatus:
        """The task's status at ``when``; ``patience``: how long a 429 may hold the take up."""
        assert job.handle is not None
        not_before = job.last_poll + lane.provider.min_poll_interval
        when = max(when, not_before)
        try:
            status = await lane.poller.status_at(job.handle, when, not_before=not_before, patience=patience)
        except TerminalError as exc:
            if isinstance(exc, PollGaveUpError) and job.paid is None:  # accepted, fate unknown
                raise await lost_track(lane, job, self._bus, str(exc)) from exc
            raise terminal_failure(lane, exc, paid=job.paid) from exc
        except ProviderError as exc:  # the poller retries transient trouble itself; this is a last resort
            raise TakeFailed(
                FailureKind.PROVIDER, str(exc), cost=job.paid, paid=job.paid is not None
            ) from exc
        job.last_poll = self._clock.now()
        return status

    async def finished_status(self, lane: Lane, job: Job) -> TaskStatus:
        """A paid task whose clip was not saved: ask again for its (fresh) result URL."""
        status = await self.poll(lane, job, self._clock.now())
        if status.state is not TaskState.SUCCEEDED:
            message = f"the provider no longer has the clip (task {job.handle} is {status.raw_status or '?'})"
            raise TakeFailed(FailureKind.DOWNLOAD, message, cost=job.paid)
        if status.cost_usd is not None or job.paid is None:
            job.paid = decide_cost(status.cost_usd, job.estimate)
        return status
