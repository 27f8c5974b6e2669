"""Without ``--store`` nothing changes (DESIGN §7): the run directory's ``journal.sqlite``, and
nothing of PostgreSQL imported — a studio that never asked for team mode needs no psycopg.

Checked in a fresh interpreter (``sys.modules`` of this test process holds psycopg already, from
the PostgreSQL tests): a simulated run, then ``status`` and ``report`` of it, then the modules.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.engine.helpers import shot, write_manifest

CHILD = """
import json, sys
from runner.cli.main import main
manifest, run_dir = sys.argv[1], sys.argv[2]
codes = [
    main(["run", manifest, "--sim-time-scale", "0.01"]),
    main(["status", run_dir, "--json"]),
    main(["report", run_dir]),
]
team = sorted(m for m in sys.modules if m.split(".")[0].startswith("psycopg") or m.startswith(
    ("runner.store.postgres", "runner.store.pgschema", "runner.store.pgslots")))
print("\\n" + json.dumps({"codes": codes, "team_modules": team}))
"""


def test_a_run_without_a_store_writes_its_journal_and_imports_no_postgresql(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=2)], name="night", simulate=True)
    run_dir = tmp_path / "out" / "night"
    env = {k: v for k, v in os.environ.items() if k != "PREVIZ_STORE"}
    env["TERM"] = "dumb"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(manifest), str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["codes"] == [0, 0, 0], done.stdout + done.stderr
    assert said["team_modules"] == [], "PostgreSQL was imported without --store"
    with sqlite3.connect(run_dir / "journal.sqlite") as conn:
        states = [row[0] for row in conn.execute("SELECT state FROM takes")]
    assert sorted(states) == ["done", "done"], states
    assert len(list((run_dir / "a").glob("*.mp4"))) == 2
