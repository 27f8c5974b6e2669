"""Whole runs against a hostile provider (issue 9): one Runway take answered wrongly, one Runware
take on the honest simulator. The bad take must end with the right kind and its paid cost, nothing
kept as done, the disk bounded; the other take finishes; the ledger is strict JSON with finite
costs; the budget holds."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.tally import Summary
from runner.simulator import Simulator
from tests.conftest import TEST_TIME_SCALE
from tests.engine.helpers import URL_VARS, shot, sim_env, write_manifest
from tests.hostile.server import hostile_server

pytestmark = pytest.mark.anyio

BUDGET = 5.0


async def _night(
    sim: Simulator, tmp_path: Path, *, result: str, cost: str = "25", max_clip_mb: float = 1024.0
) -> tuple[Summary, list[dict[str, Any]], Path]:
    manifest = write_manifest(
        tmp_path, [shot("bad", "runway"), shot("good", "runware")], budget_usd=BUDGET, concurrency=2
    )
    async with hostile_server("cost") as hostile:
        hostile.result, hostile.cost_literal = result, cost
        env = {**sim_env(sim), URL_VARS["runway"]: hostile.base_url}
        options = RunOptions(
            manifest=manifest, environ=env, clock=ScaledClock(TEST_TIME_SCALE), max_clip_mb=max_clip_mb
        )
        prepared = prepare(options)
        summary = await execute(prepared)
    lines = (prepared.run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line, parse_constant=_refuse) for line in lines]
    for row in rows:
        assert isinstance(row["cost_usd"], float | int) and math.isfinite(row["cost_usd"])
        assert row["cost_source"] in ("reported", "estimated")
    assert sum(r["cost_usd"] for r in rows) <= BUDGET
    return summary, rows, prepared.run_dir


def _refuse(name: str) -> float:
    raise AssertionError(f"ledger.jsonl holds {name}: not strict JSON")


def _by_shot(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["shot"]: r for r in rows}


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ("/clip/ftyp-zeros.mp4", "mp4"),
        ("/clip/lying-length.mp4", ""),
        ("/redirect/chain/9", "redirect"),
        ("file:///etc/passwd", "file"),
        ("http://cdn.example.invalid/x.mp4", "http"),
    ],
)
async def test_a_bad_clip_fails_that_take_alone_with_its_cost(
    sim: Simulator, tmp_path: Path, result: str, words: str
) -> None:
    started = time.monotonic()
    summary, rows, run_dir = await _night(sim, tmp_path, result=result)
    took = time.monotonic() - started
    by = _by_shot(rows)
    assert (by["bad"]["status"], by["bad"]["failure_kind"]) == ("failed", "download")
    assert words.lower() in by["bad"]["failure_message"].lower()
    assert by["bad"]["cost_usd"] == pytest.approx(0.25), "paid: the cost stays in the ledger"
    assert by["good"]["status"] == "done", "the run went on with the other take"
    assert not list(run_dir.glob("bad/*.mp4")), "nothing kept as done"
    assert not list(run_dir.rglob("*.part"))
    assert (summary.done, summary.failed) == (1, 1)
    assert took < 60


async def test_an_endless_clip_stops_at_the_size_cap(sim: Simulator, tmp_path: Path) -> None:
    summary, rows, run_dir = await _night(sim, tmp_path, result="/clip/endless.mp4", max_clip_mb=1)
    by = _by_shot(rows)
    assert (by["bad"]["status"], by["bad"]["failure_kind"]) == ("failed", "download")
    assert "cap" in by["bad"]["failure_message"] or "limit" in by["bad"]["failure_message"]
    written = sum(
        p.stat().st_size for p in run_dir.rglob("*") if p.is_file() and p.suffix in (".mp4", ".part")
    )
    assert written < 2 * 2**20, "the disk stayed bounded"
    assert summary.done == 1


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-1000", "1e300"])
async def test_a_cost_that_cannot_be_believed_is_the_estimate_flagged(
    sim: Simulator, tmp_path: Path, literal: str
) -> None:
    summary, rows, _ = await _night(sim, tmp_path, result="/clip/good.mp4", cost=literal)
    by = _by_shot(rows)
    assert by["bad"]["status"] == "done"
    assert (by["bad"]["cost_usd"], by["bad"]["cost_source"]) == (0.25, "estimated")
    assert "cost_suspect" in by["bad"]["flags"]
    assert summary.done == 2
