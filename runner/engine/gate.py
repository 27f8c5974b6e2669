"""The gate every new submission passes: the budget and the deadline (DESIGN §4).

Before a take is submitted its estimate is *reserved* in the journal, in the same transaction as
this check, so ``spent + reserved + estimate > budget`` holds across concurrent submits, kills and
reruns ("all runs together"). Takes already in flight always finish and download: stopping early
must not throw away money already committed.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from runner.store.records import DayMoney, Money


class StopReason(StrEnum):
    """Why a run stopped making new submissions (the summary's stop reason)."""

    INTERRUPTED = "interrupted"
    BUDGET = "budget"
    DEADLINE = "deadline"
    DISK_FULL = "disk full"
    NOT_WRITABLE = "output not writable"
    DISK_CAP = "disk cap"
    DAILY_CAP = "daily spend cap"  # an account's (team mode): closes that provider's lane only


#: Stops after which nothing more is sent, not even the resend of a refused submit: the user
#: asked, or no clip could be saved (a send would buy a clip that is paid but not saved).
NO_SENDS = frozenset(
    {StopReason.INTERRUPTED, StopReason.DISK_FULL, StopReason.NOT_WRITABLE, StopReason.DISK_CAP}
)
#: A clip write that failed this way fails every later clip too: the run stops submitting.
_DISK_ERRORS = {
    errno.ENOSPC: StopReason.DISK_FULL,
    errno.EDQUOT: StopReason.DISK_FULL,
    errno.EROFS: StopReason.NOT_WRITABLE,
    errno.EACCES: StopReason.NOT_WRITABLE,
    errno.EPERM: StopReason.NOT_WRITABLE,
    errno.EFBIG: StopReason.DISK_CAP,  # runner.engine.diskcap (or a file over the filesystem's limit)
}


@dataclass(frozen=True)
class Refusal:
    """Why the gate would not let a take start: the stop reason and a line for the user."""

    reason: StopReason
    message: str


def disk_refusal(exc: OSError) -> Refusal | None:
    """Why no new take may start after a clip could not be written (a full or read-only disk, a
    folder without write permission), or None when the failure is the one clip's own."""
    reason = _DISK_ERRORS.get(exc.errno or 0)
    if reason is None:
        return None
    return Refusal(reason, f"{reason}: no new submissions; takes in flight go on")


class Gate:
    """Budget cap (USD, all runs of the manifest) and deadline (no new submissions after it)."""

    def __init__(
        self,
        *,
        budget_usd: float | None,
        deadline: datetime | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.budget_usd = budget_usd
        self.deadline = deadline
        self._now = now

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (0 once past it), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, (self.deadline - self._now()).total_seconds())

    def check(self, estimate: float, money: Money) -> Refusal | None:
        """None when one more take of ``estimate`` USD may be submitted, else why not."""
        if self.deadline is not None and self._now() >= self.deadline:
            return Refusal(
                StopReason.DEADLINE, f"deadline {self.deadline.isoformat(timespec='minutes')} reached"
            )
        spent = money.spent_usd + money.reserved_usd
        if self.budget_usd is not None and spent + estimate > self.budget_usd + 1e-9:
            return Refusal(
                StopReason.BUDGET,
                f"budget ${self.budget_usd:.2f} reached: spent ${money.spent_usd:.2f}, "
                f"in flight ${money.reserved_usd:.2f}, next take ~${estimate:.2f}",
            )
        return _over_daily_cap(estimate, money.day)


def _over_daily_cap(estimate: float, day: DayMoney | None) -> Refusal | None:
    """The account's daily spend cap (team mode): every manifest on the store, today (UTC)."""
    if day is None or day.spent_usd + day.reserved_usd + estimate <= day.cap_usd + 1e-9:
        return None
    return Refusal(
        StopReason.DAILY_CAP,
        f"daily spend cap ${day.cap_usd:.2f} of account {day.account} reached for {day.day} (UTC):"
        f" spent ${day.spent_usd:.2f}, in flight ${day.reserved_usd:.2f}, next take ~${estimate:.2f}",
    )
