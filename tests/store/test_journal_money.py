"""The budget's sums in the journal (schema version 2): kept by triggers, equal to the tables'.

A reservation reads spent and held from one row; these tests hold those figures against the sums
of every ledger row and every take's reservation, after real journal operations and after a
version-1 journal (which had no such row) is opened and upgraded.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.store.schema import _TAKES
from runner.store.sqlite import FILENAME, SCHEMA_VERSION, Journal


def _sums(path: Path) -> tuple[float, float]:
    with sqlite3.connect(path) as conn:
        spent = conn.execute("SELECT coalesce(sum(cost_usd), 0) FROM rows").fetchone()[0]
        held = conn.execute("SELECT coalesce(sum(reserved_usd), 0) FROM takes").fetchone()[0]
    return float(spent), float(held)


def _plan(journal: Journal, n: int) -> None:
    journal.plan((f"k{i}", f"s#t{i:02d}", "runway", {"i": i}, f"s/s_t{i:02d}.mp4") for i in range(n))


def test_reserve_release_and_charge_keep_the_sums_equal_to_the_tables(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    _plan(journal, 6)
    for i in range(6):
        assert journal.reserve(f"k{i}", 1, 0.1 * (i + 1), lambda _money: None) is None
    journal.release("k0")
    for i in (1, 2, 3):
        journal.charge(f"k{i}", {"cost_usd": 0.07 * i, "shot": "s"}, state="done")
    money = journal.money()
    spent, held = _sums(tmp_path / FILENAME)
    assert money.spent_usd == pytest.approx(spent, abs=1e-9) and spent == pytest.approx(0.42)
    assert money.reserved_usd == pytest.approx(held, abs=1e-9) and held == pytest.approx(0.5 + 0.6)
    journal.close()


def test_a_version_1_journal_is_upgraded_with_its_sums(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with sqlite3.connect(path) as conn:
        conn.executescript(_TAKES + "PRAGMA user_version=1;")
        conn.execute(
            "INSERT INTO takes (key, label, provider, spec, reserved_usd) VALUES ('a', 'a', 'r', '{}', 0.3)"
        )
        conn.execute("INSERT INTO rows (key, cost_usd, row) VALUES ('b', 0.25, '{}')")
    readonly = Journal.open(tmp_path, readonly=True)
    assert (readonly.money().spent_usd, readonly.money().reserved_usd) == (0.25, 0.3), "read by summing"
    readonly.close()
    journal = Journal.open(tmp_path)
    assert (journal.money().spent_usd, journal.money().reserved_usd) == (0.25, 0.3)
    journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
