"""Team mode (DESIGN §7): ``previz run`` of one manifest on several "machines", one PostgreSQL store.

Each run is a real subprocess with its own output folder, against a standalone simulator (the
provider's bill) and the session's throwaway PostgreSQL server. AIML bills every task it
accepts, so two runs that both did a take would show in ``accepted``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02


def _store_sum(url: str) -> tuple[int, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(cost_usd), 0) FROM rows").fetchone()
    assert row is not None
    return int(row[0]), float(row[1])


def _done(run_dir: Path) -> list[dict[str, Any]]:
    return [r for r in ledger(run_dir) if r["status"] == "done"]


def test_two_runs_of_one_manifest_share_its_takes_and_the_bill(pg_url: str, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=10)], name="night", concurrency=2)
    knobs = {"gen_min_s": 40, "gen_max_s": 40, "aiml_concurrency": 8}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        extra = ("--store", pg_url)
        with (
            standalone.started(
                manifest, url, *extra, "--output", str(tmp_path / "ws1"), clock_scale=SCALE
            ) as a,
            standalone.started(
                manifest, url, *extra, "--output", str(tmp_path / "ws2"), clock_scale=SCALE
            ) as b,
        ):
            results = [standalone.finish(a), standalone.finish(b)]
        bill = stats(url)
    for code, out, err in results:
        assert code == 0, out + err
    mine = [_done(tmp_path / ws / "night") for ws in ("ws1", "ws2")]
    assert bill["providers"]["aimlapi"]["accepted"] == 10, "each take bought once, by one of them"
    assert sorted(r["key"] for rows in mine for r in rows) == sorted(
        {r["key"] for rows in mine for r in rows}
    )
    assert sum(len(rows) for rows in mine) == 10 and all(mine), [len(rows) for rows in mine]
    clips = [len(list((tmp_path / ws / "night" / "a").glob("*.mp4"))) for ws in ("ws1", "ws2")]
    assert clips == [len(rows) for rows in mine], "each machine's folder holds the clips it saved"
    charged = sum(r["cost_usd"] for rows in mine for r in rows)
    assert charged == pytest.approx(bill["billed_usd"]) == pytest.approx(_store_sum(pg_url)[1])


def test_a_run_killed_mid_flight_has_its_takes_finished_by_the_other(pg_url: str, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], name="night", concurrency=2)
    knobs = {"gen_min_s": 60, "gen_max_s": 60}
    lease = ("--store", pg_url, "--lease-seconds", "1.5")
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with standalone.started(
            manifest, url, *lease, "--output", str(tmp_path / "ws1"), clock_scale=SCALE
        ) as a:
            deadline = time.monotonic() + 30
            while stats(url)["providers"]["runware"]["accepted"] < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            with standalone.started(
                manifest, url, *lease, "--output", str(tmp_path / "ws2"), clock_scale=SCALE
            ) as b:
                time.sleep(0.3)
                a.send_signal(signal.SIGKILL)  # the first workstation dies with two tasks in flight
                code, out, err = standalone.finish(b)
        bill = stats(url)
    assert code == 0, out + err
    assert bill["providers"]["runware"]["accepted"] == 8, "nothing bought twice"
    _rows, total = _store_sum(pg_url)
    assert total == pytest.approx(bill["billed_usd"]), "the store's rows are the bill"
    saved = sum(len(list((tmp_path / ws / "night" / "a").glob("*.mp4"))) for ws in ("ws1", "ws2"))
    assert saved == 8, "every take saved, on one machine or the other"
    taken_over = [r for r in _done(tmp_path / "ws2" / "night") if "resumed" in (r.get("flags") or "")]
    assert taken_over, "the dead run's tasks were collected by task id"
