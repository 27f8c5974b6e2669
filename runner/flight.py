"""A take in the air, and how its end is written down.

:class:`Flight` collects what the ledger will want to know while a take is submitted, polled and
downloaded; :func:`done_outcome` and :func:`failed_outcome` turn it into the row-shaped
:class:`~runner.events.Outcome`. The two exceptions are the engine's own control flow for a take
that ends early: :class:`TakeFailed` (recorded) and :class:`NotStarted` (never sent, not recorded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from runner.download import Downloaded
from runner.errors import FailureKind
from runner.events import Outcome, TakeStatus
from runner.prices import estimate_usd
from runner.providers.base import TaskStatus
from runner.takes import Take


class NotStarted(Exception):
    """The take was never sent (its provider closed, or the run was interrupted): nothing to record."""


class TakeFailed(Exception):
    def __init__(
        self, kind: FailureKind, message: str, *, flags: tuple[str, ...] = (), cancelled: bool = False
    ):
        super().__init__(message)
        self.kind = kind
        self.flags = flags
        self.cancelled = cancelled
        self.cost_usd: float | None = None
        self.cost_source = "reported"


@dataclass
class Flight:
    """A take while it is in the air: what the ledger will want to know about it."""

    take: Take
    attempt: int
    submits: int = 0
    handle: str | None = None
    submitted_at: datetime | None = None
    submitted_clock: float = 0.0
    generation_s: float | None = None
    last_poll: float = float("-inf")
    last_seen: float = 0.0
    last_unfinished: float | None = None  # clock of the last poll that saw the task not yet terminal
    flags: list[str] = field(default_factory=list)


def done_outcome(flight: Flight, status: TaskStatus, got: Downloaded) -> Outcome:
    take = flight.take
    reported = status.cost_usd is not None
    return Outcome(
        take=take,
        status=TakeStatus.DONE,
        task_id=flight.handle,
        cost_usd=status.cost_usd if reported else estimate_usd(take.provider, take.model, take.duration),
        cost_source="reported" if reported else "estimated",
        submitted_at=flight.submitted_at,
        finished_at=datetime.now(UTC),
        generation_s=flight.generation_s,
        attempts=flight.submits,
        output=take.relpath,
        bytes=got.bytes,
        sha256=got.sha256,
        flags=tuple(flight.flags),
    )


def failed_outcome(flight: Flight, failure: TakeFailed) -> Outcome:
    take = flight.take
    if failure.cost_usd is None and failure.kind is FailureKind.UNCERTAIN:
        failure.cost_usd = estimate_usd(take.provider, take.model, take.duration)  # may have been billed
        failure.cost_source = "estimated"
    return Outcome(
        take=flight.take,
        status=TakeStatus.CANCELLED if failure.cancelled else TakeStatus.FAILED,
        task_id=flight.handle,
        failure_kind=failure.kind,
        failure_message=str(failure),
        cost_usd=failure.cost_usd,
        cost_source=failure.cost_source if failure.cost_usd is not None else "",
        submitted_at=flight.submitted_at,
        finished_at=datetime.now(UTC),
        generation_s=flight.generation_s,
        attempts=flight.submits,
        flags=(*flight.flags, *failure.flags),
    )
