"""The one rule for what a take cost: the provider's figure when it is believable, else the estimate.

Why one place: the budget, the ledger and the summary must agree to the cent, and a provider's
number is data from the wire — NaN, a negative figure or 1e300 must not break the budget (NaN
compares false) or the ledger (strict JSON). Used by the engine when an attempt ends; the journal
writes what this decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: A reported cost above this many times the estimate is not believed.
SUSPECT_FACTOR = 10.0


@dataclass(frozen=True)
class Cost:
    usd: float
    source: str  # "reported" (the provider's own figure) or "estimated" (the price table)
    flags: tuple[str, ...] = ()


def decide_cost(reported: object, estimate: float) -> Cost:
    """A finished task's cost: ``reported`` if it is a finite number in [0, 10 × estimate]."""
    if reported is None:
        return Cost(estimate, "estimated")
    if isinstance(reported, bool) or not isinstance(reported, int | float):
        return Cost(estimate, "estimated", ("cost_suspect",))
    value = float(reported)
    if not math.isfinite(value) or value < 0 or value > SUSPECT_FACTOR * max(estimate, 0.01):
        return Cost(estimate, "estimated", ("cost_suspect",))
    return Cost(value, "reported")


def failed_cost(reported: object, estimate: float, *, accepted: bool) -> Cost:
    """What an attempt that did not produce a clip cost.

    Never accepted by the provider: nothing. Accepted and reported: that figure (checked). Accepted
    and failed without a figure: 0 — Runway refunds failures (``cost.credits`` 0), AIML reports 0
    credits for an ``error`` and Runware charges delivered results — flagged ``cost_unreported``
    so an audit can find it.
    """
    if not accepted:
        return Cost(0.0, "estimated")
    if reported is None:
        return Cost(0.0, "estimated", ("cost_unreported",))
    return decide_cost(reported, estimate)


def uncertain_cost(estimate: float) -> Cost:
    """A submit that may have landed unseen: counted at the estimate, so the budget errs safe."""
    return Cost(estimate, "estimated", ("uncertain",))
