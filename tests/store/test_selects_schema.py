"""The selects table (journal version 4): older journals upgraded or read as they are, mistyped refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.store.base import JournalError
from runner.store.schema import _MONEY, _OWNER, _TAKES
from runner.store.sqlite import FILENAME, SCHEMA_VERSION, Journal


def _version_3(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_TAKES + _MONEY + _OWNER + "PRAGMA user_version=3;")
        conn.execute("INSERT INTO takes (key, label, provider, spec) VALUES ('a', 'a#t01', 'runway', '{}')")


def test_a_version_3_journal_reads_no_selects_and_is_upgraded_when_written(tmp_path: Path) -> None:
    _version_3(tmp_path / FILENAME)
    readonly = Journal.open(tmp_path, readonly=True)
    assert readonly.selects() == {}, "read as it is: no selects table, no selects"
    readonly.close()
    journal = Journal.open(tmp_path)
    journal.select(["a"], "ana", "2026-12-07T08:00:00Z")
    assert journal.selects() == {"a": ("ana", "2026-12-07T08:00:00Z")}
    journal.close()
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_a_select_holding_a_number_for_a_name_is_refused(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.plan([("a", "a#t01", "runway", {}, "a/a_t01.mp4")])
    journal.close()
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.execute("INSERT INTO selects (key, who, at) VALUES ('a', X'00ff', '2026-12-07T08:00:00Z')")
    with pytest.raises(JournalError, match=r"selects\.who holds a blob value"):
        Journal.open(tmp_path, readonly=True)
