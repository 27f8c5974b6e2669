"""Team mode's store (DESIGN §7): many runs of one manifest on one PostgreSQL, leases per take.

Against the session's throwaway server. Expiry is judged by the server's clock, so the tests age
a lease or a beat in the database itself rather than waiting it out.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import psycopg

from runner.store.owner import STALE_S, Owner
from runner.store.postgres import PostgresStore


def _open(url: str, run_dir: Path) -> PostgresStore:
    return PostgresStore.open(url, scope="night", run_dir=run_dir)


def _plan(store: PostgresStore, *keys: str) -> None:
    store.plan((k, f"s#{k}", "runway", {"shot": "s"}, f"s/s_{k}.mp4") for k in keys)


def _age(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


#: The lease time these tests take over: a lease counts as lapsed only once the server has been up
#: that long and two reconnect waits more (a restart's grace), so it is short, and the tests wait
#: out what is left of it.
LEASE = 3.0
GRACE = LEASE + 10.0


def _settled(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())"
        ).fetchone()
    assert row is not None
    time.sleep(max(0.0, GRACE - float(row[0]) + 0.1))


def test_a_take_is_leased_by_one_run_until_its_lease_lapses_by_the_servers_clock(
    pg_url: str, tmp_path: Path
) -> None:
    _settled(pg_url)
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1", "k2")
        assert a.lease("k1", "run-a", 30) is not None
        assert b.lease("k1", "run-b", 30) is None, "run a holds it"
        assert [r.key for r in b.lapsed()] == ["k2"], "never leased: free to pick up"
        assert a.renew("run-a", 30) == 1
        _age(
            pg_url, "UPDATE takes SET lease_until = clock_timestamp() - interval '1 second' WHERE key = 'k1'"
        )
        assert [r.key for r in b.lapsed(seconds=LEASE)] == ["k1", "k2"]
        assert b.lease("k1", "run-b", LEASE) is not None, "lapsed: another run takes it over"
        assert b.lease("k1", "run-b", 30) is not None, "and renews it"
        assert a.lease("k1", "run-a", 30) is None and a.renew("run-a", 30) == 0
        b.update("k1", state="done")
        assert b.lease("k1", "run-b", 30) is None and b.unended() == 1
    finally:
        a.close()
        b.close()


def test_a_run_that_ends_frees_its_leases_at_once(pg_url: str, tmp_path: Path) -> None:
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1")
        me = Owner("run-a", os.getpid(), socket.gethostname(), "2026-12-07T02:00:00+00:00", time.time())
        assert a.claim(me) is None
        assert a.lease("k1", "run-a", 3600) is not None
        a.disown("run-a")
        assert b.lease("k1", "run-b", 30) is not None, "not an hour later"
    finally:
        a.close()
        b.close()


def test_a_run_whose_beat_lapsed_is_cleared_and_refused_its_writes(pg_url: str, tmp_path: Path) -> None:
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1")
        quiet = Owner("quiet", 4242, "render-07", "2026-12-07T02:00:00+00:00", time.time())
        assert a.claim(quiet) is None
        _age(pg_url, f"UPDATE owners SET beat = beat - {STALE_S + 1} WHERE token = 'quiet'")
        mine = Owner("mine", os.getpid(), socket.gethostname(), "2026-12-07T02:01:00+00:00", time.time())
        taken = b.claim(mine)
        assert taken is not None and taken.token == "quiet" and taken.host == "render-07"
        assert a.beat("quiet", time.time()) is False, "it learns it was taken for gone"
        assert b.holder() is not None and b.holder().token == "mine"  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()


def test_runs_racing_for_the_same_takes_get_each_take_once(pg_url: str, tmp_path: Path) -> None:
    stores = [_open(pg_url, tmp_path / f"m{i}") for i in range(3)]
    keys = [f"k{i:02d}" for i in range(30)]
    _plan(stores[0], *keys)
    won: dict[str, list[str]] = {f"run-{i}": [] for i in range(3)}
    start = threading.Barrier(3)

    def race(i: int) -> None:
        start.wait()
        for key in keys:
            if stores[i].lease(key, f"run-{i}", 30) is not None:
                won[f"run-{i}"].append(key)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    taken = sorted(k for keys_won in won.values() for k in keys_won)
    assert taken == keys, {run: len(k) for run, k in won.items()}


def test_each_run_directorys_ledger_rows_are_its_own_and_the_money_is_shared(
    pg_url: str, tmp_path: Path
) -> None:
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1", "k2")
        a.charge("k1", {"shot": "s", "cost_usd": 0.25}, state="done")
        b.charge("k2", {"shot": "s", "cost_usd": 0.5}, state="done")
        assert [row["cost_usd"] for _, row in a.rows_after(0)] == [0.25]
        assert [row["cost_usd"] for _, row in b.rows_after(0)] == [0.5]
        assert len(a.row_seqs()) == len(b.row_seqs()) == 1
        assert a.money().spent_usd == b.money().spent_usd == 0.75, "one budget for the manifest"
    finally:
        a.close()
        b.close()


def test_a_feeding_run_sees_only_the_leases_another_run_let_lapse(pg_url: str, tmp_path: Path) -> None:
    """While a run still feeds its own queue it asks only for takes another run leased and let
    lapse (a dead run's) — not for the never-leased ones its own queue will reach, nor its own."""
    _settled(pg_url)
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1", "k2", "k3", "k4")
        assert a.lease("k1", "run-a", 30) is not None and b.lease("k2", "run-b", 30) is not None
        assert b.lapsed(besides="run-b") == [], "a's lease is live; k3, k4 were never leased"
        _age(pg_url, "UPDATE takes SET lease_until = clock_timestamp() - interval '1 second'")
        assert [r.key for r in b.lapsed(besides="run-b", seconds=LEASE)] == ["k1"], "not its own lapsed k2"
        b.update("k4", state="failed")
        assert b.unended() == 3 and b.unended(["k1", "k3"]) == 1 and b.unended(["k1", "k2", "k3"]) == 0
    finally:
        a.close()
        b.close()


def test_a_lapsed_lease_is_not_taken_over_while_the_server_is_just_back(pg_url: str, tmp_path: Path) -> None:
    """After a restart the live runs are still reconnecting and have not renewed: a lease that ran
    out meanwhile counts as lapsed only once the server has been up for a lease time (here the
    server has been up far less than an hour), while a lease its run gave back is free at once."""
    a, b = _open(pg_url, tmp_path / "a"), _open(pg_url, tmp_path / "b")
    try:
        _plan(a, "k1", "k2")
        assert a.lease("k1", "run-a", 30) is not None and a.lease("k2", "run-a", 30) is not None
        _age(
            pg_url, "UPDATE takes SET lease_until = clock_timestamp() - interval '1 second' WHERE key = 'k1'"
        )
        _age(pg_url, "UPDATE takes SET lease_until = '-infinity' WHERE key = 'k2'")
        assert [r.key for r in b.lapsed(seconds=3600)] == ["k2"]
        assert b.lease("k1", "run-b", 3600) is None, "run a may be reconnecting still"
        assert b.lease("k2", "run-b", 3600) is not None
    finally:
        a.close()
        b.close()
