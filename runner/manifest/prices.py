"""Price table and time priors: what a take should cost and take, before the provider says.

Used by ``previz plan`` (estimates), by the budget guard (a take's reservation before submit) and
by the ledger when a provider reports no cost (``cost_source: estimated``). Each row names its
source and the date it was read, so a stale figure is visible; a provider's own reported cost
always wins over this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class PriceRow:
    """The price of one provider/model: ``fixed_usd + usd_per_second × duration``."""

    provider: str
    model: str
    usd_per_second: float
    fixed_usd: float
    source: str
    as_of: str  # ISO date the figure was read
    assumption: bool = False  # True: no published per-second price; a stated guess
    note: str = ""

    def estimate(self, duration: int) -> float:
        return round(self.fixed_usd + self.usd_per_second * duration, 6)


_ROWS = (
    PriceRow(
        provider="aimlapi",
        model="gen4_turbo",
        usd_per_second=0.05,
        fixed_usd=0.0,
        source="AIML API runway/gen4_turbo docs: credits_used 500000 for a 5 s clip; USD = credits / 2e6",
        as_of="2026-11-21",
        assumption=True,
        note="no per-second price published; 500000 credits = $0.25 per 5 s = $0.05/s, until real credits",
    ),
    PriceRow(
        provider="runware",
        model="gen4_turbo",
        usd_per_second=0.05,
        fixed_usd=0.0042,
        source="Runware Runway Gen-4 Turbo (runway:1@1) page: reported cost 0.3042 for 6 s, 0.4042 for 8 s",
        as_of="2026-11-21",
        note="fitted to the two reported costs: 0.05/s plus 0.0042 per task",
    ),
    PriceRow(
        provider="runway",
        model="gen4_turbo",
        usd_per_second=0.05,
        fixed_usd=0.0,
        source="Runway developer API pricing: gen4_turbo 5 credits/s, $0.01 per credit",
        as_of="2026-11-21",
    ),
)

PRICES: Mapping[tuple[str, str], PriceRow] = MappingProxyType({(r.provider, r.model): r for r in _ROWS})

#: Generation-time prior: ``base + per_second × duration``. AIML's docs observed ~65 s for a 5 s clip.
GENERATION_BASE_S = 40.0
GENERATION_PER_S = 5.0


def price_row(provider: str, model: str) -> PriceRow:
    """The table's row for ``provider``/``model``; ValueError naming what is known if absent."""
    row = PRICES.get((provider, model))
    if row is None:
        known = ", ".join(f"{p}/{m}" for p, m in PRICES)
        raise ValueError(f"no price for {provider}/{model} (known: {known})")
    return row


def estimate_usd(provider: str, model: str, duration: int) -> float:
    """Estimated USD for one take of ``duration`` seconds (before the provider reports its cost)."""
    return price_row(provider, model).estimate(duration)


def expected_generation_s(provider: str, model: str, duration: int) -> float:
    """Prior for how long one generation takes, in seconds, before anything has been learned.

    The planner uses it for wall time; the poll scheduler for its first guess. The same for every
    provider until observations say otherwise (the engine learns real times per provider/model/duration).
    """
    price_row(provider, model)  # same set of known provider/models as the price table
    return GENERATION_BASE_S + GENERATION_PER_S * duration
