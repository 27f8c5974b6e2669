"""Team mode when the database restarts or goes away under the runs (DESIGN §7, faults).

Real subprocess runs against a standalone simulator (the provider's bill) and a PostgreSQL
cluster of the test's own (tests/pgcluster.py), so stopping it cannot hurt the session's server
other tests use. AIML bills every task it accepts, so a take bought twice shows in ``accepted``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest
from tests.pgcluster import Cluster, running_cluster, server_bin

pytestmark = pytest.mark.slow

SCALE = 0.02


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if server_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs Debian's postgresql)")
    with running_cluster() as found:
        yield found


def _store(url: str) -> tuple[dict[str, int], float]:
    """The takes by state, and what the store's ledger rows charged."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        states = conn.execute("SELECT state, count(*) FROM takes GROUP BY 1").fetchall()
        row = conn.execute("SELECT coalesce(sum(cost_usd), 0) FROM rows").fetchone()
    assert row is not None
    return {str(k): int(v) for k, v in states}, float(row[0])


def _in_flight(url: str) -> bool:
    """Two tasks recorded as submitted, and no submit's answer still on its way to the store."""
    try:
        states = _store(url)[0]
    except psycopg.errors.UndefinedTable:  # the run has not made the tables yet
        return False
    return states.get("submitted", 0) == 2 and "submitting" not in states


def _runs(url: str) -> int:
    """How many runs have joined the store (a run not started yet would meet a stopped server)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM owners").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def _until(what: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _done(run_dir: Path) -> list[dict[str, Any]]:
    return [r for r in ledger(run_dir) if r["status"] == "done"]


def _accepted(url: str) -> int:
    return sum(int(p["accepted"]) for p in stats(url)["providers"].values())


@pytest.mark.parametrize(("lease", "outage"), [(None, 2.0), ("1.5", 4.0)], ids=["2s", "longer-than-lease"])
def test_the_database_restarted_mid_run_loses_nothing_and_buys_nothing_twice(
    cluster: Cluster, tmp_path: Path, lease: str | None, outage: float
) -> None:
    """Two machines, AIML and Runware takes in flight, the server stopped (immediate: every
    connection cut, crash recovery on start) and started again: both runs go on. Away longer
    than the lease, every lease has run out when it is back — yet neither run takes the other's
    takes over while both are still reconnecting (a lapse counts only a lease time after start)."""
    store = cluster.create_database("night")
    takes = [shot("a", "aimlapi", takes=4), shot("b", "runware", takes=4)]
    manifest = write_manifest(tmp_path, takes, name="night", concurrency=2)
    knobs = {"gen_min_s": 40, "gen_max_s": 60, "aiml_concurrency": 8}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        leased = ("--lease-seconds", lease) if lease else ()
        one, two = (("--store", store, *leased, "--output", str(tmp_path / ws)) for ws in ("ws1", "ws2"))
        with (
            standalone.started(manifest, url, *one, clock_scale=SCALE) as a,
            standalone.started(manifest, url, *two, clock_scale=SCALE) as b,
        ):
            _until(lambda: _runs(store) == 2 and _accepted(url) >= 3)  # both started, tasks in flight
            cluster.stop("immediate")
            time.sleep(outage)
            cluster.start()
            results = [standalone.finish(a), standalone.finish(b)]
        bill = stats(url)
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err, err
    providers = bill["providers"]
    assert (providers["aimlapi"]["accepted"], providers["runware"]["accepted"]) == (4, 4), "bought once"
    mine = [_done(tmp_path / ws / "night") for ws in ("ws1", "ws2")]
    keys = [r["key"] for rows in mine for r in rows]
    assert len(keys) == len(set(keys)) == 8, "every take done once, on one machine or the other"
    states, stored = _store(store)
    assert states == {"done": 8}
    charged = sum(r["cost_usd"] for rows in mine for r in rows)
    assert charged == pytest.approx(bill["billed_usd"]) == pytest.approx(stored), "ledgers = bill = store"


def test_a_store_that_does_not_come_back_ends_the_run_in_one_line_and_the_rerun_recovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The server stopped with two AIML tasks in flight and not started within the run's 2 s
    outage window: exit 1 in one line; the rerun (once it is back) collects both by task id at
    once — the run that gave up could not free its leases, the rerun frees a gone run's."""
    store = cluster.create_database("night").replace("previz@", "previz:hunter2@")
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=4)], name="night", concurrency=2)
    knobs = {"gen_min_s": 60, "gen_max_s": 60, "aiml_concurrency": 8}
    flags = ("--store", store, "--store-outage-seconds", "2", "--output", str(tmp_path / "ws"))
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with standalone.started(manifest, url, *flags, clock_scale=SCALE) as run:
            _until(lambda: _in_flight(store))
            cluster.stop("immediate")
            code, out, err = standalone.finish(run, timeout=60)
        cluster.start()
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 1, out + err
        assert len(lines) == 1 and lines[0].startswith("previz: "), err
        assert "has not answered for 2 s" in lines[0] and "previz:***@127.0.0.1" in lines[0], lines[0]
        assert "hunter2" not in out + err and "Traceback" not in err
        again, out2, err2 = standalone.run(manifest, url, *flags, clock_scale=SCALE)
        bill = stats(url)
    assert again == 0, out2 + err2
    assert bill["providers"]["aimlapi"]["accepted"] == 4, "those in flight collected, not bought again"
    done = _done(tmp_path / "ws" / "night")
    assert sorted(r["take"] for r in done) == [1, 2, 3, 4]
    assert sum("resumed" in (r.get("flags") or "") for r in done) == 2, "collected by task id"
    states, stored = _store(store)
    assert states == {"done": 4}
    assert sum(r["cost_usd"] for r in done) == pytest.approx(bill["billed_usd"]) == pytest.approx(stored)
