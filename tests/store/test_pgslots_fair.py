"""An account's slots shared fairly between manifests (team mode, DESIGN §7).

Against the session's throwaway server, one account, two manifests' runs: a freed slot goes to
the waiting manifest that holds fewer, a manifest alone takes every slot, and a waiter whose run
died stops counting once it has not tried for a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from runner.store.pgslots import AccountSlots, _fair
from runner.store.pgstudio import Studio
from runner.store.postgres import PostgresStore

ACCOUNT = "aimlapi:fa1rfa1r"


@contextmanager
def _slots(url: str, run: str, scope: str, slots: int = 2) -> Iterator[AccountSlots]:
    shared = AccountSlots(url, ACCOUNT, run, slots, 30.0, scope=scope)
    try:
        yield shared
    finally:
        shared.close()


def _prepared(url: str, tmp: Path) -> None:
    PostgresStore.open(url, scope="setup", run_dir=tmp).close()  # the tables


def test_the_rule_gives_a_freed_slot_to_the_waiting_manifest_with_fewest() -> None:
    assert _fair({}, set(), 2, "a"), "alone, free slots are taken"
    assert not _fair({"a": 2}, set(), 2, "a"), "none free"
    assert not _fair({"a": 1}, {"b"}, 2, "a"), "b waits holding 0: its turn"
    assert _fair({"a": 1}, {"b"}, 2, "b")
    assert _fair({"a": 1, "b": 1}, {"b"}, 3, "a"), "a tie: whoever asks"
    assert _fair({"a": 3}, set(), 4, "a"), "nobody else waits: a alone gets them all"


def test_a_long_manifest_does_not_take_the_slot_a_short_one_waits_for(pg_url: str, tmp_path: Path) -> None:
    _prepared(pg_url, tmp_path)
    with _slots(pg_url, "run-a", "long") as a, _slots(pg_url, "run-b", "short") as b:
        first, second = a.try_take(others_waiting=5), a.try_take(others_waiting=4)
        assert first is not None and second is not None, "alone: both slots"
        assert b.try_take() is None, "full: b waits"
        a.give_back(first)
        assert a.try_take(others_waiting=3) is None, "b waits holding none: the freed slot is b's"
        taken = b.try_take(others_waiting=2)
        assert taken is not None, "b takes its share"
        a.give_back(second)
        assert b.try_take(others_waiting=1) is None, "b holds 1, a (waiting) holds 0: a's turn"
        assert a.try_take(others_waiting=2) is not None, "one each"


def test_a_waiter_that_stops_trying_stops_counting(pg_url: str, tmp_path: Path) -> None:
    _prepared(pg_url, tmp_path)
    with _slots(pg_url, "run-a", "long") as a, _slots(pg_url, "run-b", "short") as b:
        hold = a.try_take(others_waiting=1)
        assert hold is not None and a.try_take(others_waiting=1) is not None
        assert b.try_take() is None
        assert _waiting(pg_url) == ["long", "short"], "status --store shows who waits"
        a.give_back(hold)
        assert a.try_take(others_waiting=1) is None, "b is waiting"
        with psycopg.connect(pg_url, autocommit=True) as conn:  # b's run died: it tries no more
            conn.execute("UPDATE slot_waiters SET until = clock_timestamp() - interval '1 second'")
        assert a.try_take() is not None, "b's wait lapsed: the slot is a's"
        assert _waiting(pg_url) == []


def test_a_run_that_gets_its_slot_with_none_left_waiting_is_no_waiter(pg_url: str, tmp_path: Path) -> None:
    _prepared(pg_url, tmp_path)
    with _slots(pg_url, "run-a", "long") as a, _slots(pg_url, "run-b", "short") as b:
        assert b.try_take() is not None, "b's last take: b waits no more"
        assert a.try_take() is not None, "nobody waits"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM slot_waiters").fetchone() == (0,)


def _waiting(url: str) -> list[str]:
    studio = Studio.open(url)
    try:
        return next(a.waiting for a in studio.snapshot().accounts if a.account == ACCOUNT)
    finally:
        studio.close()
