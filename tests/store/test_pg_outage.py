"""The PostgreSQL store and an account's slots when the server goes away under them (pgconn).

Real PostgreSQL and the real driver; the faults come from a TCP proxy between them
(tests/pgproxy.py): a COMMIT cut before it reached the server, one whose answer was lost, a
server away for a while or for good.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from runner.store.base import JournalWriteError
from runner.store.owner import Owner, this_run
from runner.store.pgconn import Outage, StoreGone
from runner.store.pgslots import AccountSlots
from runner.store.postgres import PostgresStore
from runner.store.records import Money, Pending
from tests.pgproxy import Proxy

QUICK = Outage(window_s=5.0, first_s=0.05, most_s=0.2)
ROW = {"shot": "s", "cost_usd": 0.25}


@pytest.fixture
def proxy(pg_url: str) -> Iterator[Proxy]:
    found = Proxy(int(urlsplit(pg_url).port or 5432))
    yield found
    found.close()


@pytest.fixture
def store(pg_url: str, proxy: Proxy, tmp_path: Path) -> Iterator[PostgresStore]:
    opened = PostgresStore.open(proxy.url(pg_url), scope="harbor", run_dir=tmp_path, outage=QUICK)
    opened.plan([(k, f"s#{k}", "aimlapi", {"shot": "s"}, f"s/{k}.mp4") for k in ("a", "b")])
    yield opened
    opened.close()


def _rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM rows").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_charge_cut_at_its_commit_is_written_once(
    store: PostgresStore, proxy: Proxy, pg_url: str, when: str
) -> None:
    """Cut before the COMMIT reached the server: rolled back, made again. Cut after it (the answer
    lost): pg_xact_status says it committed, and it is not made again — one ledger row, not two."""
    proxy.cut_at_commit(when)
    written = store.charge("a", ROW, state="done")
    assert proxy.cuts == 1 and store.connection.reconnects == 1
    assert written["cost_usd"] == 0.25 and "paid_earlier" not in written.get("flags", "")
    assert _rows(pg_url) == 1 and store.money() == Money(0.25, 0.0)
    assert store.get("a").state == "done"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_group_commit_cut_at_its_commit_keeps_every_call_once(
    store: PostgresStore, proxy: Proxy, pg_url: str, when: str
) -> None:
    calls = [
        Pending(partial(store.op_update, "a", {"state": "submitted", "handle": "t1"})),
        Pending(partial(store.op_charge, "b", ROW, "done", {}), rows=True),
        Pending(partial(store.op_update, "zz-no-such-column", {"nope": 1})),  # fails alone
    ]
    proxy.cut_at_commit(when)
    store.batch(calls)
    assert all(c.done for c in calls) and [c.error is None for c in calls] == [True, True, False]
    assert calls[1].result["cost_usd"] == 0.25
    assert (store.get("a").state, store.get("a").handle, store.get("b").state) == ("submitted", "t1", "done")
    assert _rows(pg_url) == 1


def test_reads_and_writes_wait_for_a_server_that_comes_back(store: PostgresStore, proxy: Proxy) -> None:
    proxy.down()
    threading.Timer(0.8, proxy.up).start()
    assert set(store.records()) == {"a", "b"}  # waited for it
    store.update("a", state="reserved")
    assert store.connection.reconnects == 1 and store.connection.down_s > 0


def test_a_store_that_stays_away_ends_in_one_line_without_its_password(
    pg_url: str, proxy: Proxy, tmp_path: Path
) -> None:
    url = proxy.url(pg_url).replace("previz@", "previz:hunter2@")
    brief = Outage(window_s=0.6, first_s=0.05, most_s=0.1)
    store = PostgresStore.open(url, scope="harbor", run_dir=tmp_path, outage=brief)
    proxy.down()
    with pytest.raises(StoreGone) as gone:
        store.money()
    said = str(gone.value)
    assert isinstance(gone.value, JournalWriteError)  # the run's end: exit 1
    assert "has not answered for 0.6 s" in said and "previz:***@127.0.0.1" in said and "(harbor)" in said
    assert "hunter2" not in said and "\n" not in said
    started = time.monotonic()
    with pytest.raises(StoreGone):  # every later call at once, not after another window
        store.update("a", state="reserved")
    assert time.monotonic() - started < brief.window_s
    store.close()


def test_an_accounts_slot_given_back_while_the_store_is_away_is_owed_then_paid(
    store: PostgresStore, proxy: Proxy, pg_url: str
) -> None:
    slots = AccountSlots(proxy.url(pg_url), "aimlapi:abc", "run1", 1, 30.0, QUICK)
    try:
        hold = slots.try_take()
        assert hold is not None
        proxy.down()
        started = time.monotonic()
        slots.give_back(hold)  # not waited for
        assert time.monotonic() - started < QUICK.window_s
        proxy.up()
        slots.wait(0.05)  # the listening connection comes back too
        again = slots.try_take()  # the account's only slot: free only if the owed one was paid
        assert again is not None and again != hold
        proxy.cut_at_commit("after")
        slots.give_back(again)
        third = slots.try_take()  # a hold whose COMMIT answer was lost: taken once
        assert third is not None and proxy.cuts == 1
        with psycopg.connect(pg_url) as conn:
            held = conn.execute("SELECT id FROM slot_holds WHERE account = 'aimlapi:abc'").fetchall()
        assert held == [(third,)]
    finally:
        slots.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM slot_holds").fetchone() == (0,)


def test_a_run_that_is_provably_gone_has_its_leases_and_slots_freed_by_the_next(
    store: PostgresStore, pg_url: str
) -> None:
    """A run that ended because the store was away could not give its leases back; the next run
    on this host finds its pid dead and frees them at once, not after the lease time."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    gone = Owner("gone", int(dead.stdout), socket.gethostname(), "2026-12-07T03:00:00+00:00", time.time())
    store.claim(gone)
    assert store.lease("a", "gone", 300.0) is not None
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a slot it held when it ended
        conn.execute("INSERT INTO accounts (account, provider, slots) VALUES ('aimlapi:x', 'aimlapi', 2)")
        conn.execute("INSERT INTO slot_holds (account, run, until) VALUES ('aimlapi:x', 'gone', 'infinity')")
    assert store.lapsed() == [store.get("b")]
    store.claim(this_run())
    assert [r.key for r in store.lapsed()] == ["a", "b"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM slot_holds").fetchone() == (0,)
