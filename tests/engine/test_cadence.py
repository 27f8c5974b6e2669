"""The lane-wide poll decisions (runner/engine/cadence.py): Runware's batch cadence and a wave's news.

Pure policy on a virtual clock: the lane's real PollSchedule, BatchPoller, Flights and cadence,
driven the way the engine drives them (one loop per task: ask the schedule, wait for the poller,
observe; a take that ends is recorded and the next one starts in its slot) against a scripted
provider whose tasks end a fixed time after their first sight. No test waits on wall time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import pytest

from runner.engine.cadence import BatchCadence, CadenceRules, Flights, Watch
from runner.engine.gentimes import GenerationTimes, Learned
from runner.engine.lanes import Lane, LaneOptions
from runner.engine.polling import PollPolicy
from runner.manifest.takes import ImageKind, ImageRef, Take
from runner.providers.base import TaskState, TaskStatus
from tests.engine.fakes import FakeProvider, VirtualClock, driven, status

GROUP = ("fake", "gen4_turbo", 5)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not slept on here
        self.t += seconds


def _take(n: int) -> Take:
    image = ImageRef(source="https://example.com/a.jpg", kind=ImageKind.URL, content_id="a")
    return Take(
        shot="s", index=n, seed=n, provider="fake", model="gen4_turbo", prompt="p", image=image,
        last_image=None, duration=5, ratio="16:9", tags=(), key=f"k{n}",
    )  # fmt: skip


def _uniform(low: float, high: float, n: int = 49) -> Learned:
    return Learned(tuple(low + (high - low) * k / (n + 1) for k in range(1, n + 1)))


def _cadence(
    learned: Learned | None = None, ended: int = 0, **policy: float
) -> tuple[BatchCadence, Flights, Clock]:
    p = PollPolicy(**policy)
    rules = CadenceRules(
        p.batch_first,
        p.batch_cold_share,
        p.batch_cost,
        p.batch_gap_share,
        p.first_quantile,
        p.tail_share,
        p.floor,
    )
    clock, flights = Clock(), Flights()
    cadence = BatchCadence(rules, clock, flights, lambda _g: learned, lambda _g: ended, 1.0)
    return cadence, flights, clock


# -- BatchCadence ---------------------------------------------------------------------------------


def test_an_unlearned_wave_is_looked_at_every_second_then_by_a_share_of_its_elapsed_time() -> None:
    cadence, flights, clock = _cadence()
    flights.add(Watch(GROUP, 0.0))
    gaps = []
    for _ in range(14):
        gaps.append(cadence.delay(True))
        clock.t += gaps[-1]
    assert gaps[:10] == [1.0] * 10, "a 10 s generation is seen within a second of its end"
    assert gaps[10:] == pytest.approx([1.0, 1.1, 1.21, 1.331]), "then 10 % of the elapsed time"


def test_once_one_of_an_unlearned_group_ended_its_siblings_are_looked_at_every_second() -> None:
    cadence, flights, clock = _cadence(ended=1)
    flights.add(Watch(GROUP, 0.0))
    clock.t = 40.0
    assert cadence.delay(True) == 1.0


def test_a_learned_flight_far_from_its_first_quantile_waits_for_it() -> None:
    cadence, flights, _clock = _cadence(_uniform(40.0, 90.0))
    flights.add(Watch(GROUP, 0.0))
    gap = cadence.delay(False)
    assert 44.0 <= gap <= 44.0 + 0.075 * 44.0, "nothing can be done before the 8 % quantile (44 s)"


def _gap(origins: list[float], ended: int = 0) -> float:
    cadence, flights, _clock = _cadence(_uniform(40.0, 90.0), batch_cost=1.0, batch_gap_share=1.0)
    for i, origin in enumerate(origins):
        flights.add(Watch(GROUP, origin, handle=f"t{i}"))
    flights.answered({f"t{i}": status(f"t{i}", TaskState.SUCCEEDED) for i in range(ended)})
    return cadence.delay(True)


def test_the_batch_gap_follows_the_hazard_of_the_flight_per_task_in_it() -> None:
    """U(40, 90): a task at 60 s ends at 1/30 per second; the gap is sqrt(2 × cost × n / Λ)."""
    alone = _gap([-60.0])
    assert alone == pytest.approx((2 * 1.0 * 30.0) ** 0.5, rel=0.15)
    assert _gap([-60.0] * 16) == pytest.approx(alone, abs=0.25), "as many slots as ends: same period"
    nearly_done = _gap([-85.0] * 8 + [-10.0] * 8)  # half of them 5 s from the latest end
    assert nearly_done == pytest.approx((2 * 1.0 * 16 / (8 / 5.0)) ** 0.5, rel=0.2)
    assert nearly_done > _gap([-85.0] * 8), "tasks far from done lengthen the wait for the rest"


def test_tasks_a_poll_said_ended_no_longer_count() -> None:
    """The first task of an answer to run on plans the next batch: the ended ones are out already."""
    assert _gap([-85.0] * 15 + [-60.0], ended=15) == pytest.approx(_gap([-60.0]))


def test_a_batch_is_planned_once_for_everyone_and_a_newcomer_does_not_move_it() -> None:
    cadence, flights, clock = _cadence(_uniform(40.0, 90.0))
    for _ in range(5):
        flights.add(Watch(GROUP, -60.0))
    first = cadence.delay(True)
    assert [cadence.delay(True) for _ in range(4)] == [first] * 4, "the whole answer rides the next batch"
    clock.t += first / 2
    flights.add(Watch(GROUP, clock.t))
    assert cadence.delay(False) == pytest.approx(first / 2), "a learned newcomer rides the planned batch"


def test_a_task_joining_while_a_batch_is_out_rides_the_batch_its_answer_plans() -> None:
    """Under load an answer takes a while: a newcomer must not plan a batch of its own before the
    answered tasks may be polled again, or the flight splits into two batches taking turns."""
    cadence, flights, clock = _cadence(_uniform(40.0, 90.0))
    for _ in range(5):
        flights.add(Watch(GROUP, -60.0))
    clock.t += cadence.delay(True)  # the batch goes out
    clock.t += 0.2
    flights.add(Watch(GROUP, clock.t))
    newcomer_due = clock.t + max(1.0, cadence.delay(False))
    clock.t += 0.3  # the answer is in
    cadence.answered({})
    answered_due = clock.t + max(1.0, cadence.delay(True))
    assert newcomer_due > answered_due, "the newcomer rides the answered tasks' next batch"
    assert cadence.delay(True) == pytest.approx(answered_due - clock.t), "and they all share it"


# -- the lane, driven as the engine drives it ---------------------------------------------------


@dataclass
class Scripted:
    """Tasks that end ``gen(index)`` seconds after their submit (the clock time they are added)."""

    clock: VirtualClock
    gen: Callable[[int], float]
    ends: dict[str, float] = field(default_factory=dict)

    def add(self, handle: str, index: int) -> None:
        self.ends[handle] = self.clock.now() + self.gen(index)

    def __call__(self, _call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        now = self.clock.now()
        return {
            h: status(h, TaskState.SUCCEEDED if now >= self.ends[h] else TaskState.RUNNING) for h in handles
        }


@dataclass
class Wave:
    last_notice: float
    requests: int
    notices: list[float]


async def _run(batch: int, takes: int, slots: int, gen: Callable[[int], float]) -> Wave:
    """``takes`` takes on ``slots`` slots through a lane, polled as the engine polls them."""
    clock = VirtualClock()
    script = Scripted(clock, gen)
    provider = FakeProvider(clock, answer=script, max_poll_batch=batch, min_poll_interval=1.0)
    lane = Lane(provider, LaneOptions(concurrency=slots, requests_per_second=1000.0), clock, random.Random(0))
    queue = list(range(takes))
    notices: list[float] = []

    async def take(index: int) -> None:
        handle = f"task-{index}"
        script.add(handle, index)
        take = _take(index)
        submitted, last_poll, pending = clock.now(), -float("inf"), None
        with lane.watching(take, submitted, handle) as schedule:
            while True:
                not_before = last_poll + 1.0
                when = max(clock.now() + schedule.next_delay(), not_before)
                got = await lane.poller.status_at(handle, when, not_before=not_before)
                last_poll = clock.now()
                schedule.observe(last_poll - submitted)
                if got.state.terminal:
                    break
                pending = last_poll
        notices.append(clock.now())
        lower = 0.0 if pending is None else pending - submitted
        lane.ended(take, submitted, lower, clock.now() - submitted)

    async def slot() -> None:
        while queue:
            await take(queue.pop(0))

    async with driven(clock) as tg:
        tg.start_soon(lane.poller.run)
        async with anyio.create_task_group() as slots_tg:
            for _ in range(slots):
                slots_tg.start_soon(slot)
    return Wave(max(notices), lane.poller.requests, notices)


@pytest.mark.anyio
async def test_a_batching_lane_sees_fixed_10s_waves_within_10_percent_of_ideal() -> None:
    """24 takes of 10 s on 8 slots, ideal 30 s (issue 21: 39 s with the cold 1, 2, 4, 8 s schedule)."""
    wave = await _run(batch=100, takes=24, slots=8, gen=lambda _i: 10.0)
    assert wave.last_notice <= 1.10 * 30.0
    assert wave.requests <= 1.5 * 24


@pytest.mark.anyio
async def test_a_per_task_lane_hears_of_its_first_wave_from_the_first_end() -> None:
    """24 takes of 10 s on 8 slots, one request a task (AIML): the staggered cold schedules find
    the first end, the siblings are polled at once (issue 21: 1.26 × ideal before)."""
    wave = await _run(batch=1, takes=24, slots=8, gen=lambda _i: 10.0)
    first_wave = sorted(wave.notices)[:8]
    assert max(first_wave) - 10.0 <= 2.0, f"first wave seen {max(first_wave) - 10.0:.1f} s after its end"
    assert wave.last_notice <= 1.15 * 30.0


@pytest.mark.anyio
async def test_the_first_end_is_news_only_for_its_own_wave() -> None:
    """Takes started later (not siblings) are not hurried by a first wave's end."""
    wave = await _run(batch=1, takes=12, slots=12, gen=lambda i: 10.0 if i < 6 else 60.0)
    assert sorted(wave.notices)[5] <= 12.0, "the 10 s half of the wave is seen at once"


def test_each_schedule_of_a_lane_starts_its_cold_sequence_at_its_own_phase() -> None:
    lane = Lane(FakeProvider(VirtualClock()), LaneOptions(concurrency=8), VirtualClock(), random.Random(0))
    take = _take(0)
    firsts = sorted(lane.schedule_for(take).next_delay() for _ in range(8))
    assert len(set(firsts)) == 8 and firsts[0] >= 1.0 and firsts[-1] < 2.0, firsts


def test_generation_times_count_what_has_ended() -> None:
    times = GenerationTimes()
    assert times.count(GROUP) == 0
    times.record(GROUP, 1.0, 2.0)
    assert times.count(GROUP) == 1
