"""The plan: every take of a manifest, what is already done, and what the rest will cost and take.

``previz plan`` shows it before a run so the night's spend is known before a cent is spent. Spend
and time count only takes not yet done (their keys are absent from ``done_keys``). Wall time assumes
each provider runs ``concurrency`` takes at a time, in manifest order, each lasting the price
table's generation prior; providers run side by side. This module returns data and strings; only
the CLI prints.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from runner.manifest.document import Manifest
from runner.manifest.prices import estimate_usd, expected_generation_s
from runner.manifest.takes import Take


@dataclass(frozen=True)
class PlanRow:
    shot: str
    take: int
    seed: int
    provider: str
    model: str
    duration: int
    ratio: str
    estimated_usd: float
    done: bool
    key: str
    moderation: str | None = None  # Runway's public-figure threshold, when the manifest sets one


@dataclass(frozen=True)
class ProviderTotal:
    """One provider's share: takes, what is done, and the estimate for the rest."""

    provider: str
    takes: int
    done: int
    todo: int
    estimated_usd: float
    estimated_wall_s: float


@dataclass(frozen=True)
class Plan:
    manifest: str
    name: str
    run_dir: str
    concurrency: int
    budget_usd: float | None
    rows: tuple[PlanRow, ...]
    providers: tuple[ProviderTotal, ...]
    spent_before_usd: float = 0.0  # what earlier runs of this manifest spent (the journal's ledger)
    warnings: tuple[str, ...] = ()  # the manifest's warnings (a ratio unlike its plate), as text

    @property
    def todo(self) -> int:
        return sum(p.todo for p in self.providers)

    @property
    def done(self) -> int:
        return sum(p.done for p in self.providers)

    @property
    def estimated_usd(self) -> float:
        """Estimated spend of the takes still to do."""
        return _usd(p.estimated_usd for p in self.providers)

    @property
    def estimated_wall_s(self) -> float:
        return max((p.estimated_wall_s for p in self.providers), default=0.0)

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.spent_before_usd + self.estimated_usd > self.budget_usd

    def to_json(self) -> dict[str, Any]:
        """The ``plan --json`` document; totals equal the sums over the rows that are not done."""
        return {
            "manifest": self.manifest,
            "name": self.name,
            "run_dir": self.run_dir,
            "concurrency": self.concurrency,
            "budget_usd": self.budget_usd,
            "spent_before_usd": self.spent_before_usd,
            "warnings": list(self.warnings),
            "rows": [asdict(row) for row in self.rows],
            "totals": {
                "takes": len(self.rows),
                "done": self.done,
                "todo": self.todo,
                "estimated_usd": self.estimated_usd,
                "estimated_wall_s": self.estimated_wall_s,
                "over_budget": self.over_budget,
                "by_provider": {p.provider: _without(asdict(p), "provider") for p in self.providers},
            },
        }


def _usd(amounts: Iterable[float]) -> float:
    return round(math.fsum(amounts), 6)


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _wall_s(durations: list[float], slots: int) -> float:
    """Finish time of takes started in order on ``slots`` parallel slots (each starts when one frees).

    Slots beyond the number of takes never start one, so the heap holds at most one per take: a
    huge ``slots`` costs nothing (it once allocated a list slot per unit).
    """
    free = [0.0] * max(min(slots, len(durations)), 1)
    finish = 0.0
    for seconds in durations:
        start = heapq.heappop(free)
        finish = max(finish, start + seconds)
        heapq.heappush(free, start + seconds)
    return finish


def _row(take: Take, done_keys: set[str]) -> PlanRow:
    return PlanRow(
        shot=take.shot,
        take=take.index,
        seed=take.seed,
        provider=take.provider,
        model=take.model,
        duration=take.duration,
        ratio=take.ratio,
        estimated_usd=estimate_usd(take.provider, take.model, take.duration),
        done=take.key in done_keys,
        key=take.key,
        moderation=take.moderation,
    )


def _provider_total(provider: str, rows: list[PlanRow], concurrency: int) -> ProviderTotal:
    todo = [r for r in rows if not r.done]
    times = [expected_generation_s(r.provider, r.model, r.duration) for r in todo]
    return ProviderTotal(
        provider=provider,
        takes=len(rows),
        done=len(rows) - len(todo),
        todo=len(todo),
        estimated_usd=_usd(r.estimated_usd for r in todo),
        estimated_wall_s=round(_wall_s(times, concurrency), 3),
    )


def build_plan(manifest: Manifest, done_keys: set[str], spent_before_usd: float = 0.0) -> Plan:
    """Every take of ``manifest`` in order, flagged done when its key is in ``done_keys``.

    ``spent_before_usd`` (earlier runs' spend) counts against the budget, which covers all runs.
    """
    rows = tuple(_row(take, done_keys) for take in manifest.takes())
    by_provider: dict[str, list[PlanRow]] = {}
    for row in rows:
        by_provider.setdefault(row.provider, []).append(row)
    return Plan(
        manifest=str(manifest.path),
        name=manifest.name,
        run_dir=str(manifest.run_dir),
        concurrency=manifest.concurrency,
        budget_usd=manifest.budget_usd,
        rows=rows,
        providers=tuple(
            _provider_total(p, rs, manifest.concurrency) for p, rs in sorted(by_provider.items())
        ),
        spent_before_usd=round(spent_before_usd, 6),
        warnings=tuple(str(w) for w in manifest.warnings),
    )


def format_duration(seconds: float) -> str:
    """``3725`` → ``1h 02m``; ``125`` → ``2m 05s``; ``42`` → ``42s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _table(header: tuple[str, ...], lines: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def fmt(cells: tuple[str, ...]) -> str:
        parts = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(parts).rstrip()

    return [fmt(header), *(fmt(line) for line in lines)]


def render_plan_text(plan: Plan) -> str:
    """A readable, aligned take table followed by totals per provider and overall (no colours)."""
    head = f"plan for {plan.name} ({plan.manifest}) → {plan.run_dir}"
    takes = _table(
        ("shot", "take", "seed", "provider", "model", "dur", "ratio", "est. USD", "status", "key"),
        [
            (r.shot, f"t{r.take:02d}", str(r.seed), r.provider, r.model, f"{r.duration}s", r.ratio,
             f"{r.estimated_usd:.4f}", "done" if r.done else "to do", r.key[:12])
            for r in plan.rows
        ],
        right={1, 2, 5, 7},
    )  # fmt: skip
    totals = _table(
        ("provider", "takes", "done", "to do", "est. USD", "est. time"),
        [
            *((p.provider, str(p.takes), str(p.done), str(p.todo), f"{p.estimated_usd:.4f}",
               format_duration(p.estimated_wall_s)) for p in plan.providers),
            ("total", str(len(plan.rows)), str(plan.done), str(plan.todo), f"{plan.estimated_usd:.4f}",
             format_duration(plan.estimated_wall_s)),
        ],
        right={1, 2, 3, 4},
    )  # fmt: skip
    return "\n".join([head, "", *takes, "", *totals, "", _footer(plan)])


def _footer(plan: Plan) -> str:
    basis = f"estimates from the price table; time at concurrency {plan.concurrency} per provider"
    if plan.budget_usd is None:
        return f"no budget cap; {basis}"
    verdict = "OVER BUDGET: the run will stop early" if plan.over_budget else "within budget"
    spent = f"; {plan.spent_before_usd:.4f} USD spent by earlier runs" if plan.spent_before_usd else ""
    return f"budget {plan.budget_usd:.2f} USD (all runs together){spent}: {verdict}; {basis}"
