"""The morning after (issue 11): `previz report`, retry.yaml, summary.json and `run --json`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from runner.cli.main import main
from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.engine.helpers import ledger_rows, run_against, shot, write_manifest

pytestmark = pytest.mark.anyio

GROUPS = ("provider", "model", "shot", "day", "status")


async def _two_nights(sim: Simulator, tmp_path: Path) -> list[Path]:
    runs = []
    for night, providers in (("one", ("runware", "runway")), ("two", ("aimlapi", "runware"))):
        shots = [shot(f"{p}-a", p, takes=2, tags=[f"{night}-{p}"]) for p in providers] + [
            shot(f"{night}-flagged", providers[0], prompt="[sim:moderate] a crowd", tags=["flagged"])
        ]
        manifest = write_manifest(tmp_path / night, shots, name=night)
        _, run_dir = await run_against(sim, manifest)
        runs.append(run_dir)
    return runs


async def test_report_totals_equal_the_ledgers_sums_in_every_format(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    runs = await _two_nights(sim, tmp_path)
    ledger_total = sum(r["cost_usd"] for run in runs for r in ledger_rows(run))
    takes = sum(len({r["key"] for r in ledger_rows(run)}) for run in runs)
    assert ledger_total > 0

    assert main(["report", "--format", "json", *map(str, runs)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["cost_usd"] == pytest.approx(ledger_total)
    assert report["total"]["takes"] == takes
    for group in (*GROUPS, "tag"):  # one tag per take here, so tags add up too
        assert sum(f["cost_usd"] for f in report[group].values()) == pytest.approx(ledger_total), group
        assert sum(f["takes"] for f in report[group].values()) == takes, group
    assert report["status"]["failed"]["takes"] == 2

    assert main(["report", "--format", "csv", *map(str, runs)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    (total,) = [r for r in rows if r["group"] == "total"]
    assert float(total["cost_usd"]) == pytest.approx(ledger_total, abs=1e-4)
    for group in GROUPS:
        assert sum(float(r["cost_usd"]) for r in rows if r["group"] == group) == pytest.approx(
            ledger_total, abs=1e-3
        )

    assert main(["report", "--format", "md", *map(str, runs)]) == 0
    md = capsys.readouterr().out
    assert f"| all | {ledger_total:.4f} |" in md

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "80")
        assert main(["report", *map(str, runs)]) == 0
    text = capsys.readouterr().out
    assert f"${ledger_total:.4f}" in text
    tables = [line for line in text.splitlines() if not line.startswith("report: ")]  # paths stay whole
    assert all(len(line) <= 80 for line in tables), "the text report fits 80 columns"
    assert all((run / "report.html").exists() for run in runs)


def test_report_of_something_that_is_not_a_run_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no ledger.jsonl or ledger.csv here" in capsys.readouterr().err


async def test_retry_yaml_validates_and_a_rerun_of_it_finishes_the_takes(
    sim_factory: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "plate.png"
    from PIL import Image

    Image.new("RGB", (1280, 720), (10, 20, 30)).save(image)
    shots = [
        shot("a", "runway", takes=2, image="plate.png", ratio="16:9"),
        shot("b", "runware", seeds=[7], tags=["act1"]),
    ]
    manifest = write_manifest(tmp_path, shots)
    async with sim_factory(moderation=1.0) as hostile:  # every task refused: all three fail
        summary, run_dir = await run_against(hostile, manifest)
    assert summary.failed == 3
    retry = run_dir / "retry.yaml"
    text = retry.read_text(encoding="utf-8")
    assert text.count("# a#t0") == 2 and "# b#t01 seed 7: moderation" in text
    assert main(["validate", str(retry)]) == 0
    capsys.readouterr()
    summary_json = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary_json["paths"]["retry_yaml"] == str(retry)

    async with sim_factory() as clean:
        again, retry_dir = await run_against(clean, retry)
    assert (again.done, again.failed) == (3, 0)
    assert retry_dir.name == "t-retry" and retry_dir.parent == run_dir.parent
    seeds = sorted(r["seed"] for r in ledger_rows(retry_dir))
    assert seeds == sorted(r["seed"] for r in ledger_rows(run_dir))


def test_run_json_prints_summary_json_and_it_matches_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = [shot("fine", "runware", takes=2), shot("flagged", "runware", prompt="[sim:moderate] a crowd")]
    manifest = write_manifest(tmp_path, shots, simulate=True, budget_usd=3.0)
    code = main(["run", str(manifest), "--sim-time-scale", "0.01", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    printed: dict[str, Any] = json.loads(out)  # stdout is the summary alone; progress went to stderr
    assert "run directory:" in err
    run_dir = tmp_path / "out" / "t"
    written = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert printed == written
    rows = ledger_rows(run_dir)
    assert printed["takes"] == {"done": 2, "failed": 1}
    assert printed["spend"]["all_runs_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert printed["spend"]["budget_usd"] == 3.0
    assert printed["paths"]["ledger_csv"] == str(run_dir / "ledger.csv")
    assert printed["providers"]["runware"]["takes"] == 3
    assert printed["providers"]["runware"]["retries"] == 0
    by_source = sum(r["cost_usd"] for r in rows if r["cost_source"] == "reported")
    assert printed["spend"]["reported_usd"] == pytest.approx(by_source)


def test_summary_json_counts_retries_by_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shots = [shot("gust", "runware", takes=4), shot("squall", "aimlapi", takes=4)]
    manifest = write_manifest(tmp_path, shots, simulate=True)
    code = main(["run", str(manifest), "--sim-time-scale", "0.01", "--sim-profile", "flaky", "--json"])
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0
    providers = printed["providers"]
    for figures in providers.values():
        assert set(figures["retries_by_step"]) <= {"submit", "poll", "download"}
        assert figures["retries"] == sum(figures["retries_by_step"].values())
    assert sum(f["retries"] for f in providers.values()) > 0, "the flaky profile made nothing retry"
