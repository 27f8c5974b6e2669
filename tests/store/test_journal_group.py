"""Group commit in :class:`~runner.store.sqlite.AsyncJournal`: calls that queue while a commit is under
way are committed by the same trip to the worker thread, each in order, each failing alone."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from runner.store.group import AsyncJournal
from runner.store.records import Money
from runner.store.sqlite import Journal

pytestmark = pytest.mark.anyio


def _journal(tmp_path: Path, n: int) -> AsyncJournal:
    journal = Journal.open(tmp_path)
    journal.plan((f"k{i}", f"s#t{i:02d}", "runway", {"i": i}, f"s/s_t{i:02d}.mp4") for i in range(n))
    return AsyncJournal(journal)


async def test_calls_queued_during_a_commit_ride_the_same_trip(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 3)
    inside, go_on = threading.Event(), threading.Event()

    def slow_check(_money: Money) -> None:
        inside.set()
        go_on.wait(10)

    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.reserve, "k0", 1, 0.5, slow_check)
        await anyio.to_thread.run_sync(inside.wait, 10)  # the first commit is under way...
        tg.start_soon(partial(journal.update, "k1", state="submitting"))
        tg.start_soon(journal.reserve, "k2", 1, 0.25, lambda _m: None, {"state": "submitting"})
        await anyio.wait_all_tasks_blocked()  # ...and the other two queued behind it
        go_on.set()
    assert (journal.trips, journal.commits) == (1, 2)
    states = {r.key: r.state for r in journal.sync.records().values()}
    assert states == {"k0": "reserved", "k1": "submitting", "k2": "submitting"}
    assert journal.sync.money().reserved_usd == pytest.approx(0.75)
    journal.sync.close()


async def test_a_failing_call_in_a_later_round_fails_alone(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 2)
    inside, go_on = threading.Event(), threading.Event()

    def slow_check(_money: Money) -> None:
        inside.set()
        go_on.wait(10)

    def refuse(_money: Money) -> None:
        raise RuntimeError("the gate broke")

    failures: list[BaseException] = []

    async def reserve_refused() -> None:
        try:
            await journal.reserve("k1", 1, 0.5, refuse)
        except RuntimeError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.reserve, "k0", 1, 0.5, slow_check)
        await anyio.to_thread.run_sync(inside.wait, 10)
        tg.start_soon(reserve_refused)
        tg.start_soon(partial(journal.update, "k0", state="submitting"))
        await anyio.wait_all_tasks_blocked()
        go_on.set()
    assert [str(e) for e in failures] == ["the gate broke"]
    states = {r.key: r.state for r in journal.sync.records().values()}
    assert states == {"k0": "submitting", "k1": "planned"}
    journal.sync.close()
