"""What a take cost, and whose figure that is: the one rule, in one pure function.

Why a rule at all: the ledger's cost column feeds the budget gate and the user's bill check. A
provider that reports NaN (every comparison false: the gate stops working), Infinity, a negative
figure or 1e300 must not reach either. Such a figure is not believed: the price-table estimate
stands and the row is flagged ``cost_suspect`` so a person can look. A take with no reported
cost at all simply carries the estimate; nothing is wrong with that, so it is not flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: a reported cost above this many times the estimate is taken for a provider's mistake
SUSPECT_FACTOR = 10.0
SUSPECT = "cost_suspect"

CostSource = Literal["reported", "estimated"]


@dataclass(frozen=True)
class Cost:
    usd: float  # always finite and >= 0
    source: CostSource
    flags: tuple[str, ...] = ()


def decide_cost(reported: object, estimate: float) -> Cost:
    """The provider's figure when it is a believable number, else the estimate (flagged if one was given).

    ``estimate`` is our own price table's figure; it must be finite and >= 0 (ValueError otherwise:
    that is a bug in the table, not the provider's doing). A bool is not a number here.
    """
    if not (math.isfinite(estimate) and estimate >= 0):
        raise ValueError(f"estimate must be a finite number >= 0, got {estimate!r}")
    if reported is None:
        return Cost(estimate, "estimated")
    believed = _believable(reported, estimate)
    if believed is None:
        return Cost(estimate, "estimated", (SUSPECT,))
    return Cost(believed, "reported")


def _believable(reported: object, estimate: float) -> float | None:
    """``reported`` as a float when it is a finite number in [0, SUSPECT_FACTOR × estimate]."""
    if isinstance(reported, bool) or not isinstance(reported, int | float):
        return None
    try:
        value = float(reported)
    except OverflowError:  # an int too big for a float
        return None
    return value if math.isfinite(value) and 0 <= value <= SUSPECT_FACTOR * estimate else None


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
