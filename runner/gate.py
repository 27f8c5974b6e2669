"""The gate every new submission passes: the budget and the deadline (DESIGN §4).

Before a take is submitted its estimate is *reserved*; ``spent + reserved + estimate > budget``
means no new submission. When the take ends, its reservation becomes what it really cost (the
provider's figure, or the estimate when there is none). Takes already in flight always finish
and download: stopping early must not throw away money already committed.

``spent`` starts from the ledger of earlier runs, so the cap holds across reruns ("all runs
together"). Until the journal lands, a take that was in flight when a process died is not in
the ledger and so not counted; the journal's reservations will close that gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from runner.prices import estimate_usd
from runner.takes import Take


class StopReason(StrEnum):
    INTERRUPTED = "interrupted"
    BUDGET = "budget"
    DEADLINE = "deadline"


@dataclass(frozen=True)
class Refusal:
    reason: StopReason
    message: str


class Gate:
    def __init__(
        self,
        *,
        budget_usd: float | None,
        deadline: datetime | None,
        spent_before: float = 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.budget_usd = budget_usd
        self.deadline = deadline
        self.spent = spent_before
        self.reserved = 0.0
        self._now = now
        self._held: dict[str, float] = {}

    def admit(self, take: Take) -> Refusal | None:
        """Reserve ``take``'s estimate and return None, or say why it may not be submitted."""
        if self.deadline is not None and self._now() >= self.deadline:
            return Refusal(
                StopReason.DEADLINE, f"deadline {self.deadline.isoformat(timespec='minutes')} reached"
            )
        estimate = estimate_usd(take.provider, take.model, take.duration)
        if self.budget_usd is not None and self.spent + self.reserved + estimate > self.budget_usd + 1e-9:
            return Refusal(
                StopReason.BUDGET,
                f"budget ${self.budget_usd:.2f} reached: spent ${self.spent:.2f}, "
                f"in flight ${self.reserved:.2f}, next take ~${estimate:.2f}",
            )
        self._held[take.key] = estimate
        self.reserved += estimate
        return None

    def settle(self, take: Take, cost_usd: float | None) -> None:
        """The take ended: turn its reservation into what it cost (the estimate when unknown)."""
        held = self._held.pop(take.key, 0.0)
        self.reserved -= held
        self.spent += held if cost_usd is None else cost_usd

    def release(self, take: Take) -> None:
        """The take was admitted but never sent: give its reservation back."""
        self.reserved -= self._held.pop(take.key, 0.0)
