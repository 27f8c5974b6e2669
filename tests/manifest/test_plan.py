"""The plan: rows, totals that equal the rows, wall time, and the CLI's plan/--json output."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.manifest.document import load_manifest
from runner.manifest.plan import build_plan, format_duration, render_plan_text
from tests.manifest.conftest import Result

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "manifests" / "demo.yaml"


def test_rows_follow_the_takes() -> None:
    manifest = load_manifest(DEMO)
    plan = build_plan(manifest, done_keys=set())
    assert [(r.shot, r.take, r.seed, r.key) for r in plan.rows] == [
        (t.shot, t.index, t.seed, t.key) for t in manifest.takes()
    ]
    assert plan.todo == len(plan.rows) == 8
    runware = next(r for r in plan.rows if r.provider == "runware")
    assert runware.estimated_usd == pytest.approx(0.2542)  # 5 s at 0.05/s + 0.0042


def test_done_takes_are_flagged_and_not_counted_in_spend() -> None:
    manifest = load_manifest(DEMO)
    everything = build_plan(manifest, done_keys=set())
    first = everything.rows[0]
    plan = build_plan(manifest, done_keys={first.key})
    assert [r.done for r in plan.rows] == [True] + [False] * 7
    assert (plan.done, plan.todo) == (1, 7)
    assert plan.estimated_usd == pytest.approx(everything.estimated_usd - first.estimated_usd)


def test_json_totals_equal_the_sum_of_rows() -> None:
    manifest = load_manifest(DEMO)
    doc = build_plan(manifest, done_keys={next(manifest.takes()).key}).to_json()
    todo = [r for r in doc["rows"] if not r["done"]]
    totals = doc["totals"]
    assert totals["estimated_usd"] == pytest.approx(sum(r["estimated_usd"] for r in todo), abs=1e-9)
    assert (totals["takes"], totals["done"], totals["todo"]) == (len(doc["rows"]), 1, len(todo))
    for provider, sub in totals["by_provider"].items():
        mine = [r for r in todo if r["provider"] == provider]
        assert sub["estimated_usd"] == pytest.approx(sum(r["estimated_usd"] for r in mine), abs=1e-9)
        assert sub["todo"] == len(mine)
    assert sum(sub["takes"] for sub in totals["by_provider"].values()) == len(doc["rows"])
    assert json.loads(json.dumps(doc)) == doc


def test_wall_time_runs_concurrency_takes_at_a_time(images: Path) -> None:
    text = "version: 1\nname: w\nprovider: aimlapi\nconcurrency: 2\nshots:\n"
    text += "  - id: a\n    prompt: A\n    image: a.jpg\n    takes: 5\n"
    (images / "w.yaml").write_text(text)
    plan = build_plan(load_manifest(images / "w.yaml"), done_keys=set())
    assert plan.estimated_wall_s == pytest.approx(3 * 65.0)  # 5 takes of 65 s, 2 at a time: 3 rounds
    assert plan.over_budget is False


def test_budget_verdict(images: Path) -> None:
    text = "version: 1\nname: b\nprovider: runway\nbudget_usd: 0.30\nshots:\n"
    text += "  - id: a\n    prompt: A\n    image: a.jpg\n    takes: 2\n"
    (images / "b.yaml").write_text(text)
    plan = build_plan(load_manifest(images / "b.yaml"), done_keys=set())
    assert plan.estimated_usd == pytest.approx(0.5)
    assert plan.over_budget
    assert "OVER BUDGET" in render_plan_text(plan)


def test_text_is_an_aligned_table_with_totals() -> None:
    text = render_plan_text(build_plan(load_manifest(DEMO), done_keys=set()))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("shot "))
    assert header.split() == [
        "shot",
        "take",
        "seed",
        "provider",
        "model",
        "dur",
        "ratio",
        "est.",
        "USD",
        "status",
        "key",
    ]
    rows = [line for line in lines if line.startswith(("harbor-dawn", "gorge-tram"))]
    assert len({line.index("gen4_turbo") for line in rows}) == 1  # columns line up
    total = next(line for line in lines if line.startswith("total "))
    assert total.split()[:4] == ["total", "8", "0", "8"]
    assert "2.7168" in total
    assert "budget 5.00 USD" in text
    assert "\x1b[" not in text


@pytest.mark.parametrize(("seconds", "text"), [(42, "42s"), (125, "2m 05s"), (3725, "1h 02m"), (0, "0s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_cli_plan_json_and_text(cli: Callable[..., Result], tmp_path: Path) -> None:
    demo = tmp_path / "manifests" / "demo.yaml"  # a copy: the repo's outputs/demo may hold a run
    shutil.copytree(ROOT / "manifests", demo.parent)
    result = cli("plan", "--json", "--offline", str(demo))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["totals"]["todo"] == 8, "no run directory yet: nothing done"
    assert doc["totals"]["estimated_usd"] == pytest.approx(sum(r["estimated_usd"] for r in doc["rows"]))
    assert doc["run_dir"] == str(tmp_path / "outputs" / "demo"), "relative to the manifest"
    text = cli("plan", str(demo))
    assert text.code == 0
    assert "total" in text.out
    assert "est. USD" in text.out


def test_cli_plan_of_a_bad_manifest_exits_2(cli: Callable[..., Result], images: Path) -> None:
    (images / "bad.yaml").write_text("version: 1\nname: x\nprovider: aimlapi\nshots: []\n")
    result = cli("plan", str(images / "bad.yaml"))
    assert result.code == 2
    assert "4:8: shots: is empty" in result.err


def test_wall_time_needs_no_slot_per_unit_of_concurrency() -> None:
    """Issue 22 point 6: ``_wall_s`` once allocated a list of ``slots`` floats (10**9 → 7.7 GB)."""
    import tracemalloc

    from runner.manifest.plan import _wall_s

    tracemalloc.start()
    assert _wall_s([30.0, 20.0, 10.0], 10**12) == 30.0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000
    assert _wall_s([30.0, 20.0, 10.0], 2) == 30.0
    assert _wall_s([10.0, 10.0, 10.0], 2) == 20.0
