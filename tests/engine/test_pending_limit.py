"""Issue 22 (3): a task that never leaves the provider's queue.

The cold poll schedule once worked its gap out as ``first * factor ** (polls - 1)``: about the
1025th poll of a task still queued (2.3 hours in) overflowed a float and the ``OverflowError``
stopped the whole run. And time spent queued had no bound at all. Pure logic: a schedule driven
by hand, then one take on a driven virtual clock against an in-process provider at the
``Provider`` seam, so six hours of polling take well under a second.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from runner.engine.core import Engine, EngineOptions
from runner.engine.events import Bus, Event, EventKind
from runner.engine.lanes import LaneOptions
from runner.engine.polling import PollPolicy, PollSchedule
from runner.engine.unfinished import PENDING_LIMIT
from runner.manifest.images import ImageEncoder
from runner.providers.base import TaskState, TaskStatus
from tests.engine.fakes import FakeProvider, NoDownloads, VirtualClock, driven, open_journal, status
from tests.providers.helpers import make_take

pytestmark = pytest.mark.anyio


def test_the_cold_schedule_stays_capped_however_long_a_task_is_polled() -> None:
    schedule = PollSchedule(PollPolicy(), None, 0.0, random.Random(0))
    delays = [schedule.next_delay() for _ in range(5000)]  # 11 hours at the 8 s cap
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert max(delays) == 8.0


def _queued(_call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
    return {h: status(h, TaskState.QUEUED) for h in handles}


class Cancellable(FakeProvider):
    cancels: list[str]

    async def cancel(self, handle: str) -> bool:
        self.cancels.append(handle)
        return False  # the provider would not confirm: the task is kept for the next run


async def test_a_task_queued_past_the_pending_limit_ends_charged_and_kept(tmp_path: Path) -> None:
    clock = VirtualClock()
    provider = Cancellable(clock, answer=_queued, name="runway", min_poll_interval=5.0, can_cancel=True)
    provider.cancels = []
    take = make_take("runway", shot="q")
    journal, records = open_journal(tmp_path, [take])
    events: list[Event] = []
    options = EngineOptions(lanes={"runway": LaneOptions(concurrency=1)}, clock=clock)
    engine = Engine({"runway": provider}, downloader=NoDownloads(), encoder=ImageEncoder(),
                    journal=journal, bus=Bus(events.append), options=options)  # fmt: skip
    async with driven(clock):
        summary = await engine.run([take], records)
    ((_, row),) = journal.sync.rows_after(0)
    assert len(provider.polls) > 1025, "past the poll that used to overflow"
    ended_at = provider.polls[-1][0]
    assert PENDING_LIMIT <= ended_at < PENDING_LIMIT + 60.0, "it ended at the limit (6 h), not later"
    assert (row["status"], row["failure_kind"], row["flags"]) == ("failed", "provider", "may_bill")
    assert row["cost_usd"] == pytest.approx(0.25), "accepted and maybe billed: its estimate is spent"
    assert "still queued after 6.0 h" in row["failure_message"]
    assert provider.cancels == [f"task-{take.label}"], "cancelled where the provider allows"
    kept = journal.sync.get(take.key)
    assert (kept.state, kept.handle) == ("submitted", f"task-{take.label}"), "the next run polls it"
    assert journal.sync.money().spent_usd == pytest.approx(0.25), "the budget counts it"
    assert summary.failed == 1
    assert [e for e in events if e.kind is EventKind.FINISHED]
