"""Team mode (DESIGN §7): ``previz run`` of one manifest on several "machines", one PostgreSQL store.

Each run is a real subprocess with its own output folder, against a standalone simulator (the
provider's bill) and the session's throwaway PostgreSQL server. AIML bills every task it
accepts, so two runs that both did a take would show in ``accepted``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest
from tests.pgcluster import settled

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
    """The dead run's takes are taken over as soon as their leases lapse, while the survivor still
    has takes of its own to start. Before, only once its own queue was through (12.8 s after the
    kill with a 3 s lease in benchmarks/team.py)."""
    settled(pg_url, 1.5)
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=14)], name="night", concurrency=2)
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
    assert bill["providers"]["runware"]["accepted"] == 14, "nothing bought twice"
    _rows, total = _store_sum(pg_url)
    assert total == pytest.approx(bill["billed_usd"]), "the store's rows are the bill"
    saved = sum(len(list((tmp_path / ws / "night" / "a").glob("*.mp4"))) for ws in ("ws1", "ws2"))
    assert saved == 14, "every take saved, on one machine or the other"
    taken_over = [r for r in _done(tmp_path / "ws2" / "night") if "resumed" in (r.get("flags") or "")]
    assert taken_over, "the dead run's tasks were collected by task id"
    rows = _done(tmp_path / "ws2" / "night")
    own = [r["finished_at"] for r in rows if "resumed" not in (r.get("flags") or "")]
    later = [t for t in own if t > min(r["finished_at"] for r in taken_over)]
    # Before, only the take the dead run had leased but not yet sent (1) ended after its tasks.
    assert len(later) >= 3, f"{len(later)} of the survivor's own takes ended after the first taken over"


def _accounts(*argv: str, url: str, store: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "runner", "accounts", *argv, "--store", store],
        env=standalone.env_for(url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_manifests_on_one_account_never_go_over_its_slots(pg_url: str, tmp_path: Path) -> None:
    """Before: each manifest believed it owned the account's slots — 2 + 2 in flight against an
    AIML account that takes 2, and the simulator answered 429. Now both hold the account's slots
    on the store: never more than 2 in flight, no 429."""
    (tmp_path / "h").mkdir()
    (tmp_path / "g").mkdir()
    harbor = write_manifest(tmp_path / "h", [shot("a", "aimlapi", takes=5)], name="harbor", concurrency=2)
    gorge = write_manifest(tmp_path / "g", [shot("b", "aimlapi", takes=5)], name="gorge", concurrency=2)
    knobs = {"gen_min_s": 30, "gen_max_s": 30, "aiml_concurrency": 2}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        said = _accounts("set", "aimlapi", "--slots", "2", url=url, store=pg_url)
        assert "2 slots for every run on the store" in said and "sim-aimlapi-key" not in said
        store = ("--store", pg_url)
        with (
            standalone.started(harbor, url, *store, clock_scale=SCALE) as a,
            standalone.started(gorge, url, *store, clock_scale=SCALE) as b,
        ):
            results = [standalone.finish(a), standalone.finish(b)]
        bill = stats(url)["providers"]["aimlapi"]
        listed = _accounts(url=url, store=pg_url)
    for code, out, err in results:
        assert code == 0, out + err
    assert (bill["rejected"], bill["max_in_flight"]) == (0, 2), bill
    assert bill["accepted"] == 10
    assert "0 of 2 slots in flight" in listed, "every slot given back"


def test_every_run_of_a_manifest_exits_for_the_whole_manifest(pg_url: str, tmp_path: Path) -> None:
    """One take is refused by moderation, on whichever machine happens to do it: both runs end 1,
    and the one that did not do it says the failure was another run's."""
    shots = [shot("a", "runware", takes=6), shot("m", "runware", prompt="A storm [sim:moderate]")]
    manifest = write_manifest(tmp_path, shots, name="night", concurrency=2)
    extra = ("--store", pg_url)
    ws1, ws2 = ("--output", str(tmp_path / "ws1")), ("--output", str(tmp_path / "ws2"))
    with (
        standalone.simulator("clean", time_scale=SCALE, gen_min_s=40, gen_max_s=40) as url,
        standalone.started(manifest, url, *extra, *ws1, clock_scale=SCALE) as a,
        standalone.started(manifest, url, *extra, *ws2, clock_scale=SCALE) as b,
    ):
        results = [standalone.finish(a), standalone.finish(b)]
    assert [code for code, _, _ in results] == [1, 1], results
    failed_here = [
        ws for ws in ("ws1", "ws2") if any(r["status"] == "failed" for r in ledger(tmp_path / ws / "night"))
    ]
    assert len(failed_here) == 1, failed_here
    other = results[1] if failed_here == ["ws1"] else results[0]
    assert "1 take of this manifest failed in other runs" in other[1], other[1]
