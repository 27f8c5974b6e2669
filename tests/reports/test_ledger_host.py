"""The ledger's ``host`` column (issue 19): which machine recorded a take and saved its clip.

A ``ledger.csv`` begun by a previz from before the column still reads, takes appended rows in its
own layout (the file is appended to, never rewritten), and is rebuilt with every column when torn;
a lost journal is still rebuilt from such a ``ledger.jsonl``.
"""

from __future__ import annotations

import csv
import socket
from pathlib import Path

from runner.engine.records import COLUMNS, row_of
from runner.reports.ledger import OLDER_HEADERS
from runner.reports.report import load, totals
from runner.store.sqlite import Journal
from tests.providers.helpers import make_take
from tests.reports.test_ledger import csv_rows, done, jsonl_rows, write

OLD = OLDER_HEADERS[0]


def _make_old(run_dir: Path) -> None:
    """A run directory as a previz without ``host`` left it: rows and header without the column."""
    for name in ("ledger.csv", "ledger.jsonl"):
        path = run_dir / name
        if name.endswith(".csv"):
            _, rows = csv_rows(run_dir)
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=OLD, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            path.write_text("".join(_drop_host(line) + "\n" for line in lines), encoding="utf-8")


def _drop_host(line: str) -> str:
    import json

    row = json.loads(line)
    row.pop("host", None)
    return json.dumps(row)


def test_a_row_names_the_machine_that_recorded_it_before_its_seq(tmp_path: Path) -> None:
    write(tmp_path, done(make_take("runway", shot="harbor")))
    header, (row,) = csv_rows(tmp_path)
    assert header[-2:] == ["host", "seq"] and tuple(header) == COLUMNS
    assert row["host"] == socket.gethostname()
    assert jsonl_rows(tmp_path)[0]["host"] == socket.gethostname()
    assert row_of(done(make_take()), run_id="r", manifest="m")["host"] == socket.gethostname()


def test_an_older_csv_without_host_is_appended_in_its_own_layout(tmp_path: Path) -> None:
    write(tmp_path, done(make_take(shot="a")))
    _make_old(tmp_path)
    write(tmp_path, done(make_take(shot="b")), run_id="new")
    header, rows = csv_rows(tmp_path)
    assert tuple(header) == OLD, "an old file keeps its header: appended, never rewritten"
    assert [(r["shot"], r["seq"]) for r in rows] == [("a", "1"), ("b", "2")]
    assert all(len(r) == len(OLD) for r in rows), "every row has the header's cells"
    assert [r.get("host") for r in jsonl_rows(tmp_path)] == [None, socket.gethostname()]
    assert not list(tmp_path.glob("*.old*"))
    report = totals(load([tmp_path / "ledger.csv"]))
    assert report["total"]["takes"] == 2 and report["total"]["cost_usd"] == 0.5


def test_a_torn_older_csv_is_rebuilt_with_every_column(tmp_path: Path) -> None:
    write(tmp_path, done(make_take(shot="a")), done(make_take(shot="b")))
    _make_old(tmp_path)
    path = tmp_path / "ledger.csv"
    path.write_text(path.read_text(encoding="utf-8")[:-9], encoding="utf-8")  # cut mid-row
    write(tmp_path, done(make_take(shot="c")), run_id="rerun")
    header, rows = csv_rows(tmp_path)
    assert tuple(header) == COLUMNS
    assert [r["shot"] for r in rows] == ["a", "b", "c"]
    assert rows[-1]["host"] == socket.gethostname()


def test_a_lost_journal_is_rebuilt_from_an_older_jsonl(tmp_path: Path) -> None:
    write(tmp_path, done(make_take(shot="a")), done(make_take(shot="b")))
    _make_old(tmp_path)
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    journal = Journal.open(tmp_path)
    try:
        assert journal.adopt(jsonl_rows(tmp_path)) == 2
        assert journal.money().spent_usd == 0.5
        assert [r.state for r in journal.records().values()] == ["succeeded"] * 2, "no clips: fetched again"
    finally:
        journal.close()
