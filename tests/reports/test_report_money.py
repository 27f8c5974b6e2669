"""report.html's money line says what the figures mean: of the spend, how much the providers
reported and how much is previz's estimate — and leaves out a share that is zero (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.reports.html import render
from runner.reports.report import READ, Source


def _row(take: int, cost: float, source: str) -> dict[str, object]:
    return {name: "" for name in READ} | {
        "shot": "harbor",
        "take": take,
        "seed": take,
        "provider": "runware",
        "status": "done",
        "cost_usd": cost,
        "cost_source": source,
        "key": f"k{take}",
    }


def _money(tmp_path: Path, *rows: dict[str, object]) -> str:
    html = render(Source(tmp_path, tuple(rows)), name="night", budget_usd=5.0)
    (line,) = re.findall(r'<span class="money">(.*?)</span>', html, re.S)
    return re.sub(r"<[^>]+>", "", line)


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (("reported", "reported"), "spent $0.5000 of $5.00, all as reported by the providers"),
        (
            ("estimated", "estimated"),
            "spent $0.5000 of $5.00, all estimated by previz (no figure from the providers)",
        ),
        (
            ("reported", "estimated"),
            "spent $0.5000 of $5.00: $0.2500 as reported by the providers, "
            "$0.2500 estimated by previz (no figure from the provider)",
        ),
    ],
)
def test_the_money_line_says_whose_figures_they_are(
    tmp_path: Path, sources: tuple[str, str], expected: str
) -> None:
    line = _money(tmp_path, *(_row(i + 1, 0.25, s) for i, s in enumerate(sources)))
    assert line == expected
    assert "$0.0000" not in line


def test_nothing_spent_says_only_that(tmp_path: Path) -> None:
    assert _money(tmp_path, _row(1, 0.0, "reported")) == "spent $0.0000 of $5.00"
