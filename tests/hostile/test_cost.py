"""runner/engine/cost.py: a reported cost is believed only when finite and in [0, 10 × estimate]."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.engine.cost import SUSPECT, SUSPECT_FACTOR, Cost, decide_cost

ESTIMATE = 0.25


@pytest.mark.parametrize(
    "reported",
    [
        0,
        0.0,
        ESTIMATE,
        ESTIMATE / 3,
        SUSPECT_FACTOR * ESTIMATE,  # the edge is still believed
        1,  # an int
    ],
)
def test_a_believable_figure_is_the_cost(reported: float) -> None:
    assert decide_cost(reported, ESTIMATE) == Cost(float(reported), "reported")


@pytest.mark.parametrize(
    "reported",
    [
        math.nan,
        math.inf,
        -math.inf,
        -1000,
        -0.01,
        1e300,
        10**400,  # an int too big for a float
        math.nextafter(SUSPECT_FACTOR * ESTIMATE, math.inf),
        True,
        "0.25",
        [0.25],
        {"usd": 0.25},
    ],
)
def test_a_figure_not_to_believe_leaves_the_estimate_flagged(reported: object) -> None:
    assert decide_cost(reported, ESTIMATE) == Cost(ESTIMATE, "estimated", (SUSPECT,))


def test_no_figure_is_the_estimate_without_a_flag() -> None:
    assert decide_cost(None, ESTIMATE) == Cost(ESTIMATE, "estimated")


@pytest.mark.parametrize("estimate", [math.nan, math.inf, -1.0])
def test_a_broken_estimate_is_a_bug_not_a_cost(estimate: float) -> None:
    with pytest.raises(ValueError, match="estimate"):
        decide_cost(0.1, estimate)


@given(
    reported=st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.booleans()
    | st.text(),
    estimate=st.floats(min_value=0, max_value=1e6),
)
def test_the_cost_is_always_finite_json_with_a_source(reported: object, estimate: float) -> None:
    cost = decide_cost(reported, estimate)
    assert math.isfinite(cost.usd) and cost.usd >= 0
    assert cost.source in ("reported", "estimated")
    assert cost.usd <= max(estimate, SUSPECT_FACTOR * estimate)
    json.dumps({"cost_usd": cost.usd, "cost_source": cost.source}, allow_nan=False)
