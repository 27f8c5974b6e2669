"""Two manifests on one account share its slots fairly (team mode, DESIGN §7).

A long manifest (12 takes), run on three workstations, starts first and holds both of the AIML
account's slots; a short one (4 takes) starts on a fourth while it runs. Each run is a real
subprocess against a standalone simulator and the session's PostgreSQL. Fair: from then on each
manifest holds one slot, so the short one is through while the long one still has about half of
its takes to go — not after it, as when a freed slot goes to whichever run asks first (three runs
of the long one ask against one of the short one).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02


def test_a_short_manifest_is_not_starved_by_a_long_one_on_the_same_account(
    pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "s").mkdir()
    long = write_manifest(tmp_path / "l", [shot("a", "aimlapi", takes=12)], name="long", concurrency=2)
    short = write_manifest(tmp_path / "s", [shot("b", "aimlapi", takes=4)], name="short", concurrency=2)
    knobs = {"gen_min_s": 30, "gen_max_s": 30, "aiml_concurrency": 2}
    store = ("--store", pg_url)
    outs = [("--output", str(tmp_path / f"ws{i}")) for i in (1, 2, 3)]
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with (
            standalone.started(long, url, *store, *outs[0], clock_scale=SCALE) as a1,
            standalone.started(long, url, *store, *outs[1], clock_scale=SCALE) as a2,
            standalone.started(long, url, *store, *outs[2], clock_scale=SCALE) as a3,
        ):
            deadline = time.monotonic() + 30
            while stats(url)["providers"]["aimlapi"]["accepted"] < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            with standalone.started(short, url, *store, clock_scale=SCALE) as b:
                results = [standalone.finish(run) for run in (b, a1, a2, a3)]
        bill = stats(url)["providers"]["aimlapi"]
    for code, out, err in results:
        assert code == 0, out + err
    assert (bill["accepted"], bill["rejected"], bill["max_in_flight"]) == (16, 0, 2), bill
    done = [r for i in (1, 2, 3) for r in ledger(tmp_path / f"ws{i}" / "long") if r["status"] == "done"]
    ends = {
        "long": sorted(r["finished_at"] for r in done),
        "short": sorted(
            r["finished_at"] for r in ledger(tmp_path / "s" / "out" / "short") if r["status"] == "done"
        ),
    }
    assert [len(ends["long"]), len(ends["short"])] == [12, 4]
    long_before = sum(t <= ends["short"][-1] for t in ends["long"])
    # One slot each: 4 rounds for the short one while the long one does its first 2 and ~3 more (5
    # seen); first come, first served gave the long one 11–12 of 12 first (three runs ask for it).
    assert long_before <= 8, f"the long manifest finished {long_before} of 12 before the short one's last"
