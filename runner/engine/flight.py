"""A take on its way through one run, and how its end is written down.

:class:`Job` is what the engine knows of a take while it works on it: how it rejoined the run
(:class:`Mode` — new, resent, polled, fetched), its task handle, times and flags. The two
exceptions are the engine's control flow for a take that ends early: :class:`TakeFailed` (recorded,
immutable once raised, carrying the cost the one cost rule decided) and :class:`NotStarted` (never
sent, nothing to record). :func:`done_outcome` and :func:`failed_outcome` turn a job into the
row-shaped :class:`~runner.engine.events.Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from runner.engine.cost import Cost
from runner.engine.download import Downloaded
from runner.engine.events import Outcome, TakeEnd
from runner.engine.mp4 import duration_mismatch
from runner.errors import FailureKind
from runner.manifest.takes import Take
from runner.store.records import Record


class Mode(StrEnum):
    """How a take rejoins a run, decided from its journal row."""

    NEW = "new"  # submit a new attempt (a new task at the provider)
    RESEND = "resend"  # the last attempt may not have landed, and resending it cannot bill twice
    POLL = "poll"  # in flight at the provider: poll its task id, then download
    FETCH = "fetch"  # paid and finished at the provider, clip not saved: fresh URL, then download
    REFETCH = "refetch"  # done, but its clip was changed on disk: fetched again into a new name
    UNCERTAIN = "uncertain"  # a submit may have landed unseen: written off, then a new attempt


class NotStarted(Exception):
    """The take was never sent (its provider closed, or the run was interrupted): nothing to record."""


class TakeFailed(Exception):
    """A take ended without a clip. ``cost`` is what the attempt cost (None: nothing was spent).

    ``paid`` marks "paid but not saved": the provider finished and billed, the clip could not be
    fetched or written, and the next run fetches it by task id. ``resume_state`` marks a task whose
    fate is unknown: the journal keeps the take in that state, so the next run polls (or resends)
    that same task instead of sending a new one.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        cost: Cost | None = None,
        flags: tuple[str, ...] = (),
        cancelled: bool = False,
        paid: bool = False,
        retryable: bool = False,
        resume_state: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.cost = cost
        self.flags = flags
        self.cancelled = cancelled
        self.paid = paid
        self.retryable = retryable  # the provider's side failed, unbilled: a new task may succeed
        self.resume_state = resume_state


@dataclass(slots=True)
class Job:
    """A take while this run works on it.

    ``estimate`` is the price table's figure (the reservation); ``paid`` is the decided cost once
    the provider said the task succeeded; ``last_pending`` is the clock time of the last poll that
    saw the task unfinished (what polling learns from).
    """

    take: Take
    record: Record
    mode: Mode
    estimate: float
    attempt: int
    handle: str | None = None
    submits: int = 0
    submitted_at: datetime | None = None
    submitted_clock: float = 0.0
    generation_s: float | None = None
    last_poll: float = float("-inf")
    last_seen: float = 0.0
    last_pending: float | None = None
    paid: Cost | None = None
    retries: int = 0  # new tasks made in this run after the provider failed one
    flags: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.record.output or self.take.relpath


def _submitted_at(job: Job) -> datetime | None:
    if job.submitted_at is not None:
        return job.submitted_at
    at = job.record.submitted_at
    return datetime.fromisoformat(at) if at else None


def done_outcome(job: Job, got: Downloaded) -> Outcome:
    cost = job.paid
    assert cost is not None, "a clip is only downloaded once its task succeeded and was costed"
    return Outcome(
        take=job.take,
        status=TakeEnd.DONE,
        task_id=job.handle,
        cost_usd=cost.usd,
        cost_source=cost.source,
        submitted_at=_submitted_at(job),
        finished_at=datetime.now(UTC),
        generation_s=job.generation_s,
        attempts=job.attempt,
        output=job.output,
        bytes=got.bytes,
        sha256=got.sha256,
        clip_duration_s=got.clip_duration_s,
        width=got.width,
        height=got.height,
        flags=tuple(dict.fromkeys((*job.flags, *cost.flags, *_clip_flags(job, got)))),
    )


def _clip_flags(job: Job, got: Downloaded) -> tuple[str, ...]:
    """A clip whose length is off by more than a second is kept, and flagged for a person."""
    return ("duration_mismatch",) if duration_mismatch(got.clip_duration_s, job.take.duration) else ()


def failed_outcome(job: Job, failure: TakeFailed) -> Outcome:
    cost = failure.cost
    flags = (*job.flags, *failure.flags, *(cost.flags if cost else ()))
    return Outcome(
        take=job.take,
        status=TakeEnd.CANCELLED if failure.cancelled else TakeEnd.FAILED,
        task_id=job.handle,
        failure_kind=failure.kind,
        failure_message=str(failure),
        cost_usd=cost.usd if cost else 0.0,
        cost_source=cost.source if cost else "estimated",
        submitted_at=_submitted_at(job),
        finished_at=datetime.now(UTC),
        generation_s=job.generation_s,
        attempts=job.attempt,
        output=None,
        flags=tuple(dict.fromkeys(flags)),
        paid_not_saved=failure.paid,
        resume_state=failure.resume_state,
    )
