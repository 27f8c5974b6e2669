"""What one run did, counted as it goes: the engine's answer to the CLI's summary and exit code.

``summary.json`` (:mod:`runner.reports.summary`) reports the whole manifest from the journal; these are
this run's own counts, which decide the exit code and the closing lines on the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.engine.gate import StopReason

#: The reason a lane closes when its provider's daily cap is reached (exit 3, not a failure); an
#: account's daily spend cap (team mode) closes it with this and the cap's line.
DAILY_LIMIT = "daily limit"


@dataclass
class Summary:
    """What this run did, for the CLI's summary and exit code."""

    done: int = 0
    failed: int = 0  # ended failed in this run (paid-but-not-saved included)
    cancelled: int = 0
    skipped: int = 0  # done earlier, or failed/cancelled earlier and not retried
    failed_earlier: int = 0  # of the skipped: failed in an earlier run (still a failure: exit 1)
    failed_elsewhere: int = 0  # team mode: failed or cancelled by another run meanwhile (exit 1)
    not_started: int = 0
    uncertain: int = 0  # submits that may have landed unseen, written off and resubmitted
    held: int = 0  # uncertain takes left alone (--hold-uncertain)
    resumed: int = 0  # takes picked up in flight from an earlier run
    retried: int = 0  # new tasks after a failure on the provider's side
    spent_usd: float = 0.0
    stopped: StopReason | None = None
    #: Providers given up during the run, and why (bad key, out of credits, unreachable, daily limit).
    closed: dict[str, str] = field(default_factory=dict)
    #: Retries per provider and step ("submit", "poll", "download"), for summary.json.
    retries: dict[str, dict[str, int]] = field(default_factory=dict)

    def count_retry(self, provider: str, step: str) -> None:
        steps = self.retries.setdefault(provider, {})
        steps[step] = steps.get(step, 0) + 1

    def counts(self) -> dict[str, float]:
        """The numbers, for ``run_finished`` in run.log."""
        names = (
            "done",
            "failed",
            "cancelled",
            "skipped",
            "failed_earlier",
            "failed_elsewhere",
            "not_started",
        )
        return {n: getattr(self, n) for n in (*names, "uncertain", "held", "resumed", "retried")} | {
            "spent_usd": round(self.spent_usd, 6)
        }

    @property
    def daily_limited(self) -> bool:
        """A provider's daily cap — its task count, or an account's spend (team mode) — closed a lane."""
        return any(reason.startswith(DAILY_LIMIT) for reason in self.closed.values())

    @property
    def ok(self) -> bool:
        bad = (self.failed, self.cancelled, self.not_started, self.failed_earlier, self.failed_elsewhere)
        return not (any(bad) or self.held)
