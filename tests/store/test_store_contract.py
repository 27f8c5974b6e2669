"""What every store backend must do: the contract the engine, the reports and the commands rely on.

One suite, run against each backend through the parametrized ``opener`` fixture (SQLite, and
PostgreSQL on a throwaway server of the test session), so every backend is held to the same
promises: a take is planned once, its clip path is never shared, a reservation is checked
against the budget inside its own transaction, a charge writes its ledger row and frees the
reservation together, a take charged twice is billed once, and a batch's calls fail alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from runner.errors import LockHeldError
from runner.store.base import JournalWriteError, Store
from runner.store.group import AsyncJournal
from runner.store.owner import STALE_S, Owner
from runner.store.records import Money, Pending
from runner.store.sqlite import Journal

Opener = Callable[[], Store]


def _sqlite(run_dir: Path) -> Opener:
    def open_journal() -> Store:
        return Journal.open(run_dir)

    return open_journal


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same store again each time it is called (a second process, a rerun)."""
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    url: str = request.getfixturevalue("pg_url")

    def open_postgres() -> Store:
        from runner.store.postgres import PostgresStore

        return PostgresStore.open(url, scope="harbor", run_dir=tmp_path)

    return open_postgres


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    opened = opener()
    yield opened
    opened.close()


def _plan(store: Store, *keys: str, clip: str = "s/s_t01.mp4") -> None:
    store.plan((k, f"s#{k}", "runway", {"shot": "s", "take": k}, clip) for k in keys)


def _no_refusal(_money: Money) -> None:
    return None


def _budget(limit: float, estimate: float) -> Callable[[Money], str | None]:
    def check(money: Money) -> str | None:
        over = money.spent_usd + money.reserved_usd + estimate > limit + 1e-9
        return "over budget" if over else None

    return check


def test_a_take_is_planned_once_and_keeps_its_state(store: Store) -> None:
    first = store.plan([("a", "s#1", "runway", {"shot": "s", "seed": 7}, "s/s_t01.mp4")])
    assert first["a"].state == "planned" and first["a"].spec == {"shot": "s", "seed": 7}
    store.update("a", state="submitted", handle="task-1")
    again = store.plan([("a", "s#1", "runway", {"shot": "s", "seed": 8}, "s/s_t01.mp4")])
    assert (again["a"].state, again["a"].handle, again["a"].spec["seed"]) == ("submitted", "task-1", 7)


def test_no_two_takes_share_a_clip_path_and_a_file_on_disk_is_never_claimed(store: Store) -> None:
    (store.run_dir / "s").mkdir()
    (store.run_dir / "s" / "s_t01_v2.mp4").write_bytes(b"a clip someone kept")
    _plan(store, "a", "b", "c")
    outputs = [store.get(k).output for k in "abc"]
    assert outputs == ["s/s_t01.mp4", "s/s_t01_v3.mp4", "s/s_t01_v4.mp4"]
    moved = store.reclaim("a")
    assert moved.output not in outputs and moved.output is not None


def test_a_refused_reservation_writes_nothing(store: Store) -> None:
    _plan(store, "a")
    assert store.reserve("a", 1, 0.5, lambda _m: "no money") == "no money"
    record = store.get("a")
    assert (record.state, record.reserved_usd, store.money()) == ("planned", 0.0, Money(0.0, 0.0))


def test_concurrent_reservations_cannot_overshoot_the_budget_together(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    _plan(stores[0], *(f"k{i}" for i in range(40)))
    refused: list[str] = []

    def reserve_all(store: Store, offset: int) -> None:
        for i in range(offset, 40, 4):
            if store.reserve(f"k{i}", 1, 0.25, _budget(2.0, 0.25)) is not None:
                refused.append(f"k{i}")

    threads = [threading.Thread(target=reserve_all, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = stores[0].money().reserved_usd
    assert held == pytest.approx(2.0) and len(refused) == 32
    assert len(stores[0].records("reserved")) == 8
    for store in stores:
        store.close()


def test_release_frees_only_what_was_never_sent(store: Store) -> None:
    _plan(store, "a", "b")
    for key in "ab":
        store.reserve(key, 1, 0.25, _no_refusal)
    store.update("b", state="submitted", handle="task-b")
    store.release("a")
    store.release("b")
    assert (store.get("a").state, store.get("a").reserved_usd) == ("planned", 0.0)
    assert (store.get("b").state, store.get("b").handle) == ("submitted", "task-b")
    assert store.money().reserved_usd == pytest.approx(0.25)


def test_a_charge_writes_its_row_and_frees_the_reservation_together(store: Store) -> None:
    _plan(store, "a")
    store.reserve("a", 1, 0.30, _no_refusal)
    written = store.charge("a", {"shot": "s", "cost_usd": 0.25, "cost_source": "reported"}, state="done")
    record = store.get("a")
    assert (record.state, record.charged, record.reserved_usd) == ("done", True, 0.0)
    assert written["cost_usd"] == 0.25
    assert store.money() == Money(0.25, 0.0)
    assert store.spend_by_source() == {"reported": 0.25}


def test_a_take_charged_twice_is_billed_once(store: Store) -> None:
    _plan(store, "a")
    store.reserve("a", 1, 0.25, _no_refusal)
    store.charge("a", {"shot": "s", "cost_usd": 0.25}, state="succeeded")
    assert store.get("a").paid_not_saved
    again = store.charge("a", {"shot": "s", "cost_usd": 0.25}, state="done")
    assert again["cost_usd"] == 0.0 and "paid_earlier" in again["flags"]
    assert store.money().spent_usd == pytest.approx(0.25)


def test_ledger_rows_come_back_in_order_after_any_point(store: Store) -> None:
    _plan(store, "a", "b", "c")
    for n, key in enumerate("abc"):
        store.charge(key, {"shot": "s", "take": key, "cost_usd": 0.1 * n}, state="done")
    seqs = store.row_seqs()
    assert len(seqs) == 3 and seqs == sorted(seqs)
    assert [row["take"] for _, row in store.rows_after(seqs[0])] == ["b", "c"]
    assert store.rows_after(seqs[-1]) == []


def test_records_filter_by_state_and_an_unknown_key_is_a_key_error(store: Store) -> None:
    _plan(store, "a", "b")
    store.update("b", state="failed", failure_kind="provider", flags=("may_bill",))
    assert set(store.records()) == {"a", "b"} and set(store.records("failed")) == {"b"}
    assert store.get("b").flags == ("may_bill",)
    with pytest.raises(KeyError):
        store.get("zzz")


def test_a_batch_call_that_fails_fails_alone(store: Store) -> None:
    _plan(store, "a", "b")

    def boom() -> None:
        store.op_update("a", {"state": "submitted"})
        raise RuntimeError("this call fails")

    calls = [Pending(boom), Pending(lambda: store.op_update("b", {"state": "submitted"}))]
    store.batch(calls)
    assert isinstance(calls[0].error, RuntimeError) and calls[1].error is None
    assert (store.get("a").state, store.get("b").state) == ("planned", "submitted")


def test_what_was_written_is_there_after_reopening(opener: Opener) -> None:
    first = opener()
    _plan(first, "a")
    first.reserve("a", 1, 0.25, _no_refusal)
    first.charge("a", {"shot": "s", "cost_usd": 0.25}, state="done", handle="task-a")
    first.close()
    again = opener()
    record = again.get("a")
    assert (record.state, record.handle, again.money(), len(again.row_seqs())) == (
        "done",
        "task-a",
        Money(0.25, 0.0),
        1,
    )
    again.close()


@pytest.mark.anyio
async def test_the_event_loop_side_commits_concurrent_calls_together(store: Store) -> None:
    _plan(store, *(f"k{i}" for i in range(20)))
    rows: list[Any] = []
    journal = AsyncJournal(store, on_row=lambda: rows.append(1))

    async def one(i: int) -> None:
        await journal.reserve(f"k{i}", 1, 0.1, _no_refusal)
        await journal.update(f"k{i}", state="submitted", handle=f"t{i}")
        await journal.charge(f"k{i}", {"shot": "s", "cost_usd": 0.1}, state="done")

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    money = store.money()
    assert money.spent_usd == pytest.approx(2.0) and money.reserved_usd == 0.0
    assert len(store.records("done")) == 20 and len(store.row_seqs()) == 20
    assert journal.commits < 60 and rows, "calls were grouped, and the ledger files followed"


# --- one writer at a time: the owner row (runner.store.owner) -----------------------------------


def _owner(token: str, *, pid: int, host: str, beat: float) -> Owner:
    return Owner(token, pid, host, "2026-12-07T01:00:00+00:00", beat)


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_a_live_holder_is_named_and_a_second_run_refused_by_a_journal_but_not_by_a_team_store(
    opener: Opener,
) -> None:
    first, second = opener(), opener()
    try:
        now = time.time()
        assert first.claim(_owner("a", pid=os.getpid(), host=socket.gethostname(), beat=now)) is None
        if not isinstance(first, Journal):  # PostgreSQL: the runs of a manifest cooperate
            assert second.claim(_owner("b", pid=1, host="render-07", beat=now)) is None
            assert first.holder() is not None and second.beat("b", now) and first.beat("a", now)
            return
        with pytest.raises(LockHeldError, match=rf"pid {os.getpid()} on {socket.gethostname()}"):
            second.claim(_owner("b", pid=1, host="render-07", beat=now))
        elsewhere = _owner("c", pid=4242, host="render-07", beat=now)
        first.disown("a")
        assert second.claim(elsewhere) is None, "given back, it is free"
        with pytest.raises(LockHeldError, match="pid 4242 on render-07"):
            first.claim(_owner("d", pid=os.getpid(), host=socket.gethostname(), beat=now + STALE_S / 2))
    finally:
        first.close()
        second.close()


def test_a_holder_that_is_gone_is_taken_over_and_then_refused_its_writes(opener: Opener) -> None:
    here, now = socket.gethostname(), time.time()
    cases = [_owner("dead", pid=_dead_pid(), host=here, beat=now)]  # killed on this host: at once
    probe = opener()
    team = not isinstance(probe, Journal)
    probe.close()
    if not team:  # a team store beats by its own clock: tests/store/test_team.py ages its rows
        cases.append(_owner("quiet", pid=4242, host="render-07", beat=now - STALE_S - 1))
    for gone in cases:
        old, new = opener(), opener()
        try:
            _plan(old, f"k-{gone.token}")
            assert old.claim(gone) is None
            taken = new.claim(_owner(f"new-{gone.token}", pid=os.getpid(), host=here, beat=now))
            assert taken is not None and taken.token == gone.token, "the claimant learns whom it took over"
            assert old.beat(gone.token, now) is False, "the old run learns it was taken over"
            with pytest.raises(JournalWriteError, match="taken over"):
                old.update(f"k-{gone.token}", state="submitted", handle="t")
            assert new.get(f"k-{gone.token}").state == "planned", "nothing written by the old run"
            new.disown(f"new-{gone.token}")
        finally:
            old.close()
            new.close()


# --- leases (team mode; on SQLite every take not ended is the one run's) ------------------------


def test_a_take_that_ended_is_leased_by_no_one_and_unended_counts_the_rest(store: Store) -> None:
    _plan(store, "a", "b", "c")
    store.update("b", state="done")
    store.update("c", state="submitted", handle="task-3")
    assert store.unended() == 2
    assert store.lease("b", "run-1", 30) is None, "ended: nothing to work on"
    leased = store.lease("c", "run-1", 30)
    assert leased is not None and (leased.state, leased.handle) == ("submitted", "task-3"), "fresh record"
    assert store.renew("run-1", 30) in (0, 1)


# --- the selects: the takes an artist chose in the morning ---------------------------------------


def test_selects_are_recorded_with_who_and_when_and_survive_a_reopening(opener: Opener) -> None:
    first = opener()
    _plan(first, "a", "b", "c")
    first.select(["a", "b"], "ana", "2026-12-07T08:00:00Z")
    first.select(["c"], "ben", "2026-12-07T08:05:00Z", instead_of=["b"])
    first.close()
    again = opener()
    try:
        assert again.selects() == {
            "a": ("ana", "2026-12-07T08:00:00Z"),
            "c": ("ben", "2026-12-07T08:05:00Z"),
        }, "c replaced b in one transaction"
        again.select(["a"], "cleo", "2026-12-07T09:00:00Z")
        assert again.selects()["a"] == ("cleo", "2026-12-07T09:00:00Z"), "selected again: who and when now"
    finally:
        again.close()


def test_a_select_of_an_unknown_take_writes_nothing(store: Store) -> None:
    _plan(store, "a")
    with pytest.raises(KeyError, match="nope"):
        store.select(["a", "nope"], "ana", "2026-12-07T08:00:00Z")
    assert store.selects() == {}


def test_unselect_forgets_some_or_every_select(store: Store) -> None:
    _plan(store, "a", "b", "c")
    store.select(["a", "b", "c"], "ana", "2026-12-07T08:00:00Z")
    assert store.unselect(["b", "missing"]) == 1
    assert sorted(store.selects()) == ["a", "c"]
    assert store.unselect() == 2
    assert store.selects() == {}
