"""The studio-wide view against real runs (issue 19): two ``previz run --store`` processes of one
manifest on two output folders, then ``report --store`` and ``status --store``; and a team
``cancel --store`` of a dead run's Runway tasks. Real subprocesses, a standalone simulator (the
bill) and the session's throwaway PostgreSQL server.
"""

from __future__ import annotations

import csv
import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from runner.reports.studio import view
from runner.store.base import JournalError
from tests.crash import standalone
from tests.crash.standalone import stats
from tests.engine.helpers import shot, write_manifest
from tests.pgcluster import settled

pytestmark = pytest.mark.slow

SCALE = 0.02


def _csv(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (run_dir / "ledger.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _wait(until: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_report_store_is_both_ledgers_and_the_bill_and_status_store_sees_the_runs(
    pg_url: str, tmp_path: Path
) -> None:
    shots = [shot("a", "aimlapi", takes=4), shot("b", "runware", takes=4)]
    manifest = write_manifest(tmp_path, shots, name="night", concurrency=2)
    knobs = {"gen_min_s": 60, "gen_max_s": 60, "aiml_concurrency": 8}
    store = ("--store", pg_url)
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with (
            standalone.started(
                manifest, url, *store, "--output", str(tmp_path / "ws1"), clock_scale=SCALE
            ) as a,
            standalone.started(
                manifest, url, *store, "--output", str(tmp_path / "ws2"), clock_scale=SCALE
            ) as b,
        ):
            _wait(lambda: _accepted(url) >= 1)
            live = view(pg_url)  # while the runs go: in process, no interpreter to start
            results = [standalone.finish(a), standalone.finish(b)]
        bill = stats(url)
        reported = standalone.previz("report", *store, "--format", "json", url=url)
        status = standalone.previz("status", *store, url=url)
    for code, out, err in results:
        assert code == 0, out + err
    assert reported.returncode == 0, reported.stderr
    total = json.loads(reported.stdout)["total"]
    ledgers = [_csv(tmp_path / ws / "night") for ws in ("ws1", "ws2")]
    summed = sum(float(r["cost_usd"] or 0) for _, rows in ledgers for r in rows)
    assert total["cost_usd"] == pytest.approx(summed) == pytest.approx(bill["billed_usd"])
    assert total["takes"] == total["done"] == 8
    for header, rows in ledgers:
        assert header[-2:] == ["host", "seq"]
        assert {r["host"] for r in rows} <= {socket.gethostname()}
    (night,) = live["manifests"]
    assert night["manifest"] == "night" and any(r["live"] for r in night["runs"]), live
    assert status.returncode == 0, status.stderr
    assert "manifest night: 8 takes (8 done)" in status.stdout
    assert "account aimlapi:" in status.stdout and "account runware:" in status.stdout
    assert "0 of 2 slots in flight" in status.stdout, "every slot given back"


def _accepted(url: str) -> int:
    providers = stats(url)["providers"]
    return int(sum(p["accepted"] for p in providers.values()))


def _submitted(store: str) -> int:
    try:
        manifests = view(store)["manifests"]
    except JournalError:  # the run has not made the tables yet
        return 0
    return int(manifests[0]["counts"].get("submitted", 0)) if manifests else 0


def test_cancel_store_cancels_a_dead_runs_runway_tasks_once_its_leases_lapse(
    pg_url: str, tmp_path: Path
) -> None:
    settled(pg_url, 1.5)
    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=3)], name="night", concurrency=3)
    lease = ("--store", pg_url, "--lease-seconds", "1.5")
    with standalone.simulator("clean", time_scale=0.2, gen_min_s=60, gen_max_s=60) as url:
        with standalone.started(
            manifest, url, *lease, "--output", str(tmp_path / "ws1"), clock_scale=0.2
        ) as a:
            _wait(lambda: _submitted(pg_url) >= 3)  # the task ids in the store, not only at Runway
            a.send_signal(signal.SIGKILL)  # the workstation dies with three tasks in flight
        _wait(lambda: not view(pg_url)["manifests"][0]["leases"])
        cancelled = standalone.previz(
            "cancel", str(manifest), "--store", pg_url, url=url
        )  # from another machine
        time.sleep(0.5)
        bill = stats(url)["providers"]["runway"]
        status = standalone.previz("status", "--store", pg_url, url=url)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    assert "no task in flight" not in cancelled.stdout, cancelled.stdout
    assert sum(line.startswith("cancelled a#t0") for line in cancelled.stdout.splitlines()) == 3
    assert (bill["accepted"], bill["billed_usd"]) == (3, 0.0)
    assert "manifest night: 3 takes (3 cancelled)" in status.stdout
    rows = standalone.ledger(tmp_path / "out" / "night")  # the manifest's own output_dir
    assert [r["status"] for r in rows] == ["cancelled"] * 3 and rows[0]["host"] == socket.gethostname()
