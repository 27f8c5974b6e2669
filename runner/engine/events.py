"""What the engine says while it runs. Progress, the ledger and the log subscribe; nothing prints.

Events are delivered synchronously, in order, to every subscriber. Durable state is not a
subscriber: the engine writes the journal (and through it the ledger) itself, before it emits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from runner.engine.retrying import Retry
from runner.errors import FailureKind
from runner.manifest.takes import Take
from runner.providers.base import TaskState


class EventKind(StrEnum):
    """What an :class:`Event` is about (the ``event`` field of run.log lines)."""

    RUN_STARTED = "run_started"
    SKIPPED = "skipped"  # already done in an earlier run
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    STATUS = "status"  # the provider's state of a task changed (or progressed)
    DOWNLOADING = "downloading"
    FINISHED = "finished"  # the take reached an end: see Event.outcome
    RETRYING = "retrying"
    WARNING = "warning"
    STOPPING = "stopping"
    RUN_FINISHED = "run_finished"


class TakeEnd(StrEnum):
    """How a take ended (the ledger's ``status`` column)."""

    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    """A take's end, as the ledger records it."""

    take: Take
    status: TakeEnd
    task_id: str | None = None
    failure_kind: FailureKind | None = None
    failure_message: str | None = None
    cost_usd: float | None = None
    cost_source: str = "estimated"  # "reported" when the provider gave its own figure
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    generation_s: float | None = None
    attempts: int = 0
    output: str | None = None  # path relative to the run directory
    bytes: int | None = None
    sha256: str | None = None
    clip_duration_s: float | None = None  # read from the clip's own header (mvhd)
    width: int | None = None  # of the clip's video track (tkhd)
    height: int | None = None
    flags: tuple[str, ...] = ()
    #: The provider finished and billed, but the clip could not be fetched or written: the take
    #: stays ``succeeded`` in the journal and the next run fetches it by task id.
    paid_not_saved: bool = False
    #: The task may still exist at the provider: the journal keeps the take in this state with its
    #: task id (``submitted``: polled by the next run; ``submitting``: resent with the same taskUUID).
    resume_state: str | None = None


@dataclass(frozen=True)
class Event:
    """One thing the engine says. ``take`` is None for run-wide events; ``state``/``progress`` come
    with STATUS, ``handle`` with SUBMITTED, ``outcome`` with FINISHED, ``retry`` with RETRYING (a
    new task after a provider-side failure has none); ``at`` is UTC."""

    kind: EventKind
    take: Take | None = None
    message: str = ""
    state: TaskState | None = None
    progress: float | None = None
    handle: str | None = None
    outcome: Outcome | None = None
    counts: Mapping[str, float] | None = None  # RUN_FINISHED: the run's counts and spend
    retry: Retry | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


Subscriber = Callable[[Event], None]


class Bus:
    """Fan-out of events to subscribers, in subscription order."""

    def __init__(self, *subscribers: Subscriber) -> None:
        self._subscribers = list(subscribers)

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)
