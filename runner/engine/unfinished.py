"""A task the runner stops waiting for before the provider said it ended: what that take costs.

Why one rule: the provider accepted the task, so it may still run and bill whether or not anyone
polls it. Written off at $0, such a take would free its reservation (the budget lets more work
through, while the provider bills this one) and a rerun would pay for the same take again. So:

* a task still *running* past the take's timeout (:func:`timed_out`) is cancelled where the
  provider allows; cancelled, it costs nothing, else its estimate, flagged ``may_bill``;
* a task whose polls kept failing, or one *queued* past the pending limit (:func:`lost_track`), is
  cancelled where the provider allows too, but charged its estimate, flagged ``may_bill``, either
  way: no poll has seen it for a long while, and a confirmed cancel does not say it had not
  finished (and billed) before. Unless the cancel was confirmed, the journal keeps the take
  ``submitted`` with its task id, so the next run polls that same task — never a new one; a clip
  found then costs nothing more (its row says ``paid_earlier``).

:class:`Waited` keeps the two clocks those limits count: time the task was seen running, and
time it was seen queued (or not seen yet).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.engine.cost import Cost
from runner.engine.events import Bus, Event, EventKind
from runner.engine.flight import Job, TakeFailed
from runner.engine.lanes import Lane
from runner.errors import FailureKind, ProviderError
from runner.providers.base import TaskState

#: Seconds a task may stay queued (or pending) at the provider before the take stops waiting.
PENDING_LIMIT = 6 * 3600.0
MAY_BILL = "may_bill"


@dataclass
class Waited:
    """Seconds a take waited at the provider in this run, by what the poll before each wait saw."""

    running: float = 0.0
    queued: float = 0.0

    def add(self, state: TaskState | None, seconds: float) -> None:
        if state is TaskState.RUNNING:
            self.running += seconds
        else:
            self.queued += seconds

    def patience(
        self, state: TaskState | None, take_timeout: float, pending_limit: float, deadline: float | None
    ) -> float:
        """Seconds the take may still wait (on a provider's Retry-After): the limit its state
        counts against, and the run's deadline (``deadline``: seconds left, None for none)."""
        left = take_timeout - self.running if state is TaskState.RUNNING else pending_limit - self.queued
        return max(0.0, left if deadline is None else min(left, deadline))


async def cancel(lane: Lane, job: Job, bus: Bus) -> bool:
    """Cancel the take's task where the provider allows; True only when the provider confirmed."""
    if not (lane.provider.can_cancel and job.handle):
        return False
    try:
        return await lane.provider.cancel(job.handle)
    except ProviderError as exc:
        bus.emit(Event(EventKind.WARNING, job.take, message=f"could not cancel: {exc}"))
        return False


async def timed_out(lane: Lane, job: Job, bus: Bus, running: float) -> TakeFailed:
    """A task running too long: cancelled where the provider allows, else it may still bill."""
    cancelled = await cancel(lane, job, bus)
    cost = Cost(0.0, "estimated") if cancelled else Cost(job.estimate, "estimated", (MAY_BILL,))
    what = "cancelled at the provider" if cancelled else "the provider may still finish and bill it"
    return TakeFailed(FailureKind.TIMEOUT, f"still running after {running:.0f} s; {what}", cost=cost)


async def lost_track(lane: Lane, job: Job, bus: Bus, why: str) -> TakeFailed:
    """Stopped waiting for a task of unknown fate: charged, and kept for the next run to poll."""
    cancelled = await cancel(lane, job, bus)
    if cancelled:
        what = "cancelled at the provider; charged its estimate, as it may have finished first"
    else:
        what = f"the provider may still finish and bill it; the next run polls task {job.handle}"
    return TakeFailed(
        FailureKind.PROVIDER,
        f"{why}; {what}",
        cost=Cost(job.estimate, "estimated", (MAY_BILL,)),
        resume_state=None if cancelled else "submitted",
    )
