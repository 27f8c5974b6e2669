"""Team mode with three machines (issue 19): three ``previz run`` of one manifest on one store.

Each run is a real subprocess with its own output folder, against a standalone simulator (the
provider's bill) and a fresh database on the session's throwaway PostgreSQL server. AIML is used
because its price is flat (0.25 a 5 s take) and the simulator counts every task it accepts, so a
take bought twice, or a budget passed by a race, shows in the bill.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02
MACHINES = ("ws1", "ws2", "ws3")


def _money(url: str, scope: str) -> tuple[float, float, float]:
    """The store's view of a manifest's money: spent, still held, and the rows' sum."""
    with psycopg.connect(url) as conn:
        money = conn.execute("SELECT spent, held FROM money WHERE scope = %s", (scope,)).fetchone()
        rows = conn.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM rows WHERE scope = %s", (scope,)
        ).fetchone()
    assert money is not None and rows is not None
    return float(money[0]), float(money[1]), float(rows[0])


def _three_runs(manifest: Path, url: str, store: str, tmp_path: Path) -> list[tuple[int, str, str]]:
    """The three machines started together, each with its own folder; their (exit, out, err)."""
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                standalone.started(
                    manifest, url, "--store", store, "--output", str(tmp_path / ws), clock_scale=SCALE
                )
            )
            for ws in MACHINES
        ]
        return [standalone.finish(proc) for proc in procs]


def _done(tmp_path: Path, ws: str, name: str) -> list[dict[str, Any]]:
    return [r for r in ledger(tmp_path / ws / name) if r["status"] == "done"]


def _clips(tmp_path: Path, ws: str, name: str, shot_id: str) -> int:
    return len(list((tmp_path / ws / name / shot_id).glob("*.mp4")))


def _all_ok(results: Sequence[tuple[int, str, str]], code: int) -> None:
    for got, out, err in results:
        assert got == code, f"exit {got}, not {code}:\n{out}\n{err}"


def test_three_runs_of_one_manifest_do_every_take_once(pg_url: str, tmp_path: Path) -> None:
    """12 takes, 3 slots on the account, each run leasing up to 3: every take bought once, each
    folder holds the clips its run saved, the three ledgers together are the bill and the store."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=12)], name="night", concurrency=3)
    knobs = {"gen_min_s": 60, "gen_max_s": 60, "aiml_concurrency": 8}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        results = _three_runs(manifest, url, pg_url, tmp_path)
        bill = stats(url)
    _all_ok(results, 0)
    mine = {ws: _done(tmp_path, ws, "night") for ws in MACHINES}
    keys = [r["key"] for rows in mine.values() for r in rows]
    assert len(keys) == len(set(keys)) == 12, "every take done, each by one machine"
    assert bill["providers"]["aimlapi"]["accepted"] == 12, "each take bought once"
    assert bill["providers"]["aimlapi"]["max_in_flight"] <= 3, "never over the account's slots"
    assert all(mine.values()), {ws: len(rows) for ws, rows in mine.items()}
    for ws, rows in mine.items():
        assert _clips(tmp_path, ws, "night", "a") == len(rows), f"{ws}'s folder holds what it saved"
    charged = sum(r["cost_usd"] for rows in mine.values() for r in rows)
    spent, held, stored = _money(pg_url, "night")
    assert charged == pytest.approx(bill["billed_usd"]) == pytest.approx(stored) == pytest.approx(spent)
    assert held == pytest.approx(0), "no reservation left behind"


def test_a_budget_race_of_three_runs_never_goes_over(pg_url: str, tmp_path: Path) -> None:
    """$1.60 for 12 takes of 0.25: room for 6. Three runs race for the reservations; the store's
    spend and the provider's bill stay within the budget, and every run says exit 3 (DESIGN §1:
    stopped by budget with takes left) for the whole manifest."""
    budget = 1.60
    manifest = write_manifest(
        tmp_path, [shot("a", "aimlapi", takes=12)], name="night", concurrency=3, budget_usd=budget
    )
    knobs = {"gen_min_s": 40, "gen_max_s": 40, "aiml_concurrency": 9}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        results = _three_runs(manifest, url, pg_url, tmp_path)
        bill = stats(url)
    _all_ok(results, 3)
    assert all("budget" in out for _, out, _ in results), [out[-400:] for _, out, _ in results]
    spent, held, stored = _money(pg_url, "night")
    assert bill["billed_usd"] <= budget + 1e-9, bill
    assert spent <= budget + 1e-9 and stored == pytest.approx(spent) == pytest.approx(bill["billed_usd"])
    assert held == pytest.approx(0), "no reservation left behind"
    done = sum(len(_done(tmp_path, ws, "night")) for ws in MACHINES)
    assert done == bill["providers"]["aimlapi"]["accepted"] == 6, "as many as the budget holds, once each"
    assert spent == pytest.approx(1.50)
