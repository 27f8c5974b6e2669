"""An account's daily spend cap across manifests, and a manifest's budget, on a team store.

Against the session's throwaway server: two manifests (scopes) on one account reserve against
one day's cap; a take's cost counts on the day its estimate was held; and threads of different
manifests racing for the last dollars never hold more than the cap together.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from runner.engine.gate import Gate, Refusal, StopReason
from runner.store.pgslots import set_account
from runner.store.pgstudio import Account, Studio
from runner.store.postgres import PostgresStore

ACCOUNT = "aimlapi:feedface"
GATE = Gate(budget_usd=None, deadline=None)


def _store(url: str, scope: str, run_dir: Path, *keys: str) -> PostgresStore:
    store = PostgresStore.open(url, scope=scope, run_dir=run_dir / scope)
    store.use_accounts({"aimlapi": ACCOUNT})
    store.plan((k, f"s#{k}", "aimlapi", {"shot": "s"}, f"s/{scope}_{k}.mp4") for k in keys)
    return store


def _reserve(store: PostgresStore, key: str, estimate: float) -> Refusal | None:
    return store.reserve(key, 1, estimate, lambda money: GATE.check(estimate, money))


def _charge(store: PostgresStore, key: str, cost: float) -> None:
    store.charge(key, {"key": key, "cost_usd": cost, "cost_source": "reported"}, state="done")


def test_two_manifests_on_one_account_stop_at_its_daily_cap(pg_url: str, tmp_path: Path) -> None:
    a = _store(pg_url, "night-a", tmp_path, "a1", "a2", "a3")
    b = _store(pg_url, "night-b", tmp_path, "b1", "b2")
    set_account(pg_url, ACCOUNT, daily_usd=1.0)
    try:
        assert _reserve(a, "a1", 0.3) is None and _reserve(a, "a2", 0.3) is None
        assert _reserve(b, "b1", 0.3) is None, "0.9 of 1.00 held, across both manifests"
        refused = _reserve(b, "b2", 0.3)
        assert refused is not None and refused.reason is StopReason.DAILY_CAP
        assert "daily spend cap $1.00 of account aimlapi:feedface" in refused.message
        assert "in flight $0.90" in refused.message
        assert b.get("b2").reserved_usd == 0 and b.get("b2").state == "planned", "nothing held"

        _charge(a, "a1", 0.25)  # cheaper than its estimate: 0.85 of the day used
        assert _reserve(b, "b2", 0.3) is not None, "0.85 + 0.30 is over the cap"
        a.release("a2")  # never sent: its estimate comes back
        assert _reserve(b, "b2", 0.3) is None, "0.55 + 0.30 is under it"

        account = _accounts(pg_url)[ACCOUNT]
        assert (account.daily_usd, account.today_spent_usd, account.today_reserved_usd) == (1.0, 0.25, 0.6)
        assert account.today_takes == 1
        assert a.money().spent_usd == 0.25 and b.money().reserved_usd == 0.6, "budgets stay per manifest"
    finally:
        a.close()
        b.close()


def test_a_cost_counts_on_the_day_its_estimate_was_held(pg_url: str, tmp_path: Path) -> None:
    a = _store(pg_url, "night", tmp_path, "late", "today")
    set_account(pg_url, ACCOUNT, daily_usd=0.5)
    try:
        assert _reserve(a, "late", 0.4) is None
        with psycopg.connect(pg_url, autocommit=True) as conn:  # held before midnight (UTC)
            conn.execute("UPDATE takes SET held_day = held_day - 1 WHERE key = 'late'")
        assert _reserve(a, "today", 0.4) is None, "yesterday's hold is not today's"
        _charge(a, "late", 0.4)
        account = _accounts(pg_url)[ACCOUNT]
        assert (account.today_spent_usd, account.today_reserved_usd) == (0.0, 0.4), "charged on its day"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            days = conn.execute("SELECT day = current_date - 1 FROM rows WHERE key = 'late'").fetchall()
        assert days == [(True,)]
    finally:
        a.close()


def test_the_cap_can_be_lifted_and_an_account_without_one_is_only_counted(
    pg_url: str, tmp_path: Path
) -> None:
    a = _store(pg_url, "night", tmp_path, "k1", "k2")
    try:
        assert _reserve(a, "k1", 5.0) is None, "no cap: any amount"
        set_account(pg_url, ACCOUNT, daily_usd=1.0)
        assert _reserve(a, "k2", 0.1) is not None, "5.10 of 1.00"
        set_account(pg_url, ACCOUNT, slots=3)  # the cap stays as it was
        assert _reserve(a, "k2", 0.1) is not None
        set_account(pg_url, ACCOUNT, daily_usd=None)
        assert _reserve(a, "k2", 0.1) is None
        account = _accounts(pg_url)[ACCOUNT]
        assert (account.slots, account.daily_usd, account.today_reserved_usd) == (3, None, 5.1)
    finally:
        a.close()


def test_manifests_racing_for_the_last_dollars_never_hold_more_than_the_cap(
    pg_url: str, tmp_path: Path
) -> None:
    manifests = 4
    stores = [_store(pg_url, f"m{i}", tmp_path, *(f"k{j}" for j in range(8))) for i in range(manifests)]
    set_account(pg_url, ACCOUNT, daily_usd=1.0)
    start = threading.Barrier(manifests)
    held: list[int] = [0] * manifests

    def race(i: int) -> None:
        start.wait()
        held[i] = sum(_reserve(stores[i], f"k{j}", 0.1) is None for j in range(8))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(manifests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sum(held) == 10, f"held per manifest {held}: exactly the cap's ten takes, never more"
    assert _accounts(pg_url)[ACCOUNT].today_reserved_usd == pytest.approx(1.0)


def test_a_manifests_budget_is_on_the_store(pg_url: str, tmp_path: Path) -> None:
    a = _store(pg_url, "night", tmp_path, "k1")
    try:
        a.set_budget(12.5)
        studio = Studio.open(pg_url)
        try:
            (manifest,) = studio.snapshot().manifests
        finally:
            studio.close()
        assert (manifest.scope, manifest.budget_usd) == ("night", 12.5)
    finally:
        a.close()


def _accounts(url: str) -> dict[str, Account]:
    studio = Studio.open(url)
    try:
        return {a.account: a for a in studio.snapshot().accounts}
    finally:
        studio.close()
