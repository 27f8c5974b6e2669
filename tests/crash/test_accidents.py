"""A user's ordinary accidents around a run (issue 24): each a subprocess ``previz run`` on a
standalone simulator, disturbed as a night would disturb it, and the money audited from
``/_sim/stats`` afterwards — billed against the ledger, clips against the takes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02


def _wait(what: str, probe: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.01)
    raise AssertionError(f"never {what}")


def _states(run_dir: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{(run_dir / 'journal.sqlite').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM takes GROUP BY state").fetchall())
    finally:
        conn.close()


def test_a_submit_refused_429_and_killed_in_its_retry_wait_is_not_written_off(tmp_path: Path) -> None:
    """AIML answers 429 over one task in flight. The run is killed while two takes wait to resend
    a refused submit: they created nothing, so the rerun submits them — no ``uncertain`` charge.

    The first run's clock is real time, so its retry waits (about 1 s) dwarf a POST and its
    journal commit: the kill lands in the wait, not in a send whose answer is truly unknown."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=3)], name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    knobs = {"aiml_concurrency": 1, "gen_min_s": 30, "gen_max_s": 30}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with standalone.started(manifest, url, clock_scale=1.0) as proc:
            _wait("two submits refused", lambda: stats(url)["providers"]["aimlapi"]["rejected"] >= 2)
            time.sleep(0.3)  # the refusals' rows are committed; the next resend is ≥ 0.75 s away
            proc.kill()
        first = _states(run_dir)
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        bill = stats(url)
    rows = ledger(run_dir)
    charged = sum(r["cost_usd"] for r in rows)
    assert code == 0, out + err
    assert first.get("submitting", 0) == 0, f"refused submits were left as write-ahead rows: {first}"
    assert [r["status"] for r in rows] == ["done"] * 3, rows
    assert not [r for r in rows if "uncertain" in (r.get("flags") or "")], rows
    assert bill["providers"]["aimlapi"]["accepted"] == 3
    assert charged == pytest.approx(bill["billed_usd"]), (
        f"ledger ${charged:.2f}, billed ${bill['billed_usd']:.2f}"
    )
