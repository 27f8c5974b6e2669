"""One simulated generation task and the life it leads in simulated time.

Why timestamps instead of a background worker: a task's whole life is decided when it is
registered (how long it runs, whether it fails), so its status at any moment is a pure function
of the clock. Nothing runs between requests; a poll computes where the task is now. Only Runway's
queue needs a start time assigned later (see ``state.World.advance``).

Phases, and how each provider names them:

=========  ===========  ==========  =========
phase      AIML         Runware     Runway
=========  ===========  ==========  =========
WAITING    —            —           THROTTLED
QUEUED     queued       processing  PENDING
RUNNING    generating   processing  RUNNING
SUCCEEDED  completed    success     SUCCEEDED
FAILED     error        error       FAILED
CANCELLED  —            —           CANCELLED
=========  ===========  ==========  =========
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: share of a task's run spent queued before it starts generating
QUEUED_SHARE = 0.15
#: a moderated task fails after this share of its normal generation time
MODERATION_SHARE = 0.2


class Phase(enum.Enum):
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


def generation_seconds(duration: int, jitter: float) -> float:
    """Simulated time to make a clip: about 60 s for 5 s, longer for longer clips.

    ``jitter`` in [0, 1) spreads it ±15 % so takes of one shot do not all land together.
    """
    return (40.0 + 4.0 * duration) * (0.85 + 0.3 * jitter)


@dataclass
class Task:
    """A registered task. Times are simulated seconds since the world began."""

    provider: str
    task_id: str
    take_id: str
    file_id: str
    duration: int
    seed: int
    created_at: float
    run_seconds: float
    moderated: bool
    cost_usd: float
    extras: dict[str, Any] = field(default_factory=dict)
    #: a provider-side failure code this task ends with (Runway ``failureCode``), when not moderated
    failure_code: str | None = None
    #: when it got a slot; None while Runway keeps it THROTTLED
    start_at: float | None = None
    cancelled_at: float | None = None
    deleted: bool = False
    #: how many output URLs were handed out (the first may be doomed by the expire fault)
    urls_issued: int = 0

    @property
    def end_at(self) -> float | None:
        """When the task reaches its end by itself (cancellation aside)."""
        return None if self.start_at is None else self.start_at + self.run_seconds

    @property
    def slot_end(self) -> float | None:
        """When the task stops holding a concurrency slot: its end, or its cancellation."""
        end = self.end_at
        if self.cancelled_at is not None and (end is None or self.cancelled_at < end):
            return self.cancelled_at
        return end

    def phase(self, now: float) -> Phase:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return Phase.CANCELLED
        if self.start_at is None or now < self.start_at:
            return Phase.WAITING
        elapsed = now - self.start_at
        if elapsed >= self.run_seconds:
            return Phase.FAILED if self.moderated or self.failure_code else Phase.SUCCEEDED
        if elapsed < self.run_seconds * QUEUED_SHARE:
            return Phase.QUEUED
        return Phase.RUNNING

    def progress(self, now: float) -> float:
        """Share of the generating part done, 0..1 (Runway's ``progress``)."""
        if self.start_at is None:
            return 0.0
        queued = self.run_seconds * QUEUED_SHARE
        span = self.run_seconds - queued
        done = (now - self.start_at - queued) / span if span > 0 else 1.0
        return round(min(1.0, max(0.0, done)), 2)

    def in_flight(self, now: float) -> bool:
        """Registered and not yet terminal (a THROTTLED task counts)."""
        return not self.phase(now).terminal

    def billed_usd(self, now: float) -> float:
        """What the provider has charged by ``now``: the cost once it succeeded, else nothing."""
        return self.cost_usd if self.phase(now) is Phase.SUCCEEDED else 0.0
