"""Team mode's claims (runner.engine.claims): one run never works on a take twice.

The store here is the SQLite journal, where every take not ended is the run's own — so whether a
take is worked twice rests on ``Claims`` alone, which is what these tests pin down.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runner.engine.claims import Claims
from runner.engine.flight import Job, Mode
from runner.engine.rejoin import Policy
from tests.engine.fakes import open_journal
from tests.providers.helpers import make_take

pytestmark = pytest.mark.anyio


def _policy(run_dir: Path) -> Policy:
    return Policy(run_dir, {"runware": True}, retry_failed=False, hold_uncertain=False)


async def test_two_queues_holding_one_take_get_it_once(tmp_path: Path) -> None:
    """A dead run's take found by the watcher while this run's own queue reaches it too: both ask
    at once, and the lease's round trip lies between their checks."""
    take = make_take("runware")
    journal, records = open_journal(tmp_path, [take])
    claims = Claims(journal, "run-a", lease_s=30)
    job = Job(take, records[take.key], Mode.NEW, 0.05, 1)
    got: list[Job | None] = []

    async def ask() -> None:
        got.append(await claims.fresh(job, _policy(tmp_path)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        tg.start_soon(ask)
    assert sorted(g is not None for g in got) == [False, True], got


async def test_a_take_this_run_is_done_with_is_not_leased_again(tmp_path: Path) -> None:
    take = make_take("runware")
    journal, records = open_journal(tmp_path, [take])
    claims = Claims(journal, "run-a", lease_s=30)
    job = Job(take, records[take.key], Mode.NEW, 0.05, 1)
    assert await claims.fresh(job, _policy(tmp_path)) is job
    claims.pass_over([take.key])
    assert await claims.fresh(job, _policy(tmp_path)) is None
    assert await claims.left() == [], "nothing else unended: the wait is over"
