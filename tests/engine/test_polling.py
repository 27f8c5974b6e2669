"""PollSchedule, GenerationTimes, Hints and BatchPoller (runner/engine/polling.py).

The poller is exercised with a scripted provider at the Provider seam and a virtual clock
(tests/engine/fakes.py), so every assertion about *when* a request went out is exact and no test
waits on wall time.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from itertools import pairwise

import anyio
import pytest

from runner.engine.lanes import Lane, LaneOptions
from runner.engine.meters import RateLimiter
from runner.engine.polling import BatchPoller, GenerationTimes, Hints, Learned, PollPolicy, PollSchedule
from runner.engine.retrying import Backoff, RetryPolicy
from runner.errors import FailureKind, RateLimitedError, TerminalError, TransientError
from runner.providers.base import TaskState, TaskStatus
from tests.engine.fakes import FakeProvider, VirtualClock, all_running, driven, status

# -- PollSchedule ---------------------------------------------------------------------------------


def _delays(schedule: PollSchedule, n: int) -> list[float]:
    return [schedule.next_delay() for _ in range(n)]


def _uniform(low: float, high: float, n: int = 49) -> Learned:
    """Learned times where n draws from U(low, high) sit on average: at the k / (n + 1) quantiles."""
    return Learned(tuple(low + (high - low) * k / (n + 1) for k in range(1, n + 1)))


def test_unlearned_schedule_is_short_geometric_and_capped() -> None:
    schedule = PollSchedule(PollPolicy(), None, 0.0, random.Random(0))
    assert _delays(schedule, 7) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_unlearned_schedule_respects_the_provider_minimum() -> None:
    schedule = PollSchedule(PollPolicy(), None, 3.0, random.Random(0))
    assert _delays(schedule, 6) == [3.0, 3.0, 4.0, 8.0, 8.0, 8.0]


def test_learned_schedule_polls_first_at_a_low_quantile() -> None:
    policy = PollPolicy(first_quantile=0.05)
    schedule = PollSchedule(policy, _uniform(40.0, 90.0), 0.0, random.Random(5))
    assert schedule.next_delay() == pytest.approx(42.5), "5 % of takes are done by 42.5 s"


def test_learned_gaps_shrink_as_the_remaining_takes_are_used_up() -> None:
    """Under U(40, 90) the hazard at t is 1/(90 − t): gaps follow sqrt(2 × cost × (90 − t))."""
    policy = PollPolicy(poll_cost=0.5, gap_share=math.inf, jitter=0.0)
    schedule = PollSchedule(policy, _uniform(40.0, 90.0), 0.0, random.Random(5))
    delays = _delays(schedule, 8)
    elapsed = [sum(delays[: i + 1]) for i in range(len(delays))]
    gaps = delays[1:]
    assert all(later < earlier for earlier, later in pairwise(gaps)), gaps
    for t, gap in zip(elapsed, gaps, strict=False):
        assert gap == pytest.approx(math.sqrt(2 * 0.5 * (90.0 - t)), rel=0.15)


def test_no_learned_gap_is_longer_than_a_share_of_the_elapsed_time() -> None:
    """Lateness counts as a share of the take's time: early, the share caps the hazard's long gaps."""
    policy = PollPolicy(poll_cost=1.0, gap_share=0.075, jitter=0.0)
    schedule = PollSchedule(policy, _uniform(40.0, 90.0), 0.0, random.Random(5))
    delays = _delays(schedule, 12)
    elapsed = [sum(delays[: i + 1]) for i in range(len(delays))]
    for t, gap in zip(elapsed, delays[1:], strict=False):
        hazard_gap = math.sqrt(2 * 1.0 * (90.0 - t))
        assert gap == pytest.approx(min(hazard_gap, 0.075 * t), rel=0.15)
    assert delays[1] == pytest.approx(0.075 * 44.0), "at 44 s the hazard alone would wait 9.6 s"
    assert delays[-1] < 0.075 * elapsed[-2], "near the end the hazard's shorter gaps rule"


def test_learned_gaps_are_jittered_not_in_lockstep() -> None:
    schedules = [PollSchedule(PollPolicy(), _uniform(40.0, 90.0), 0.0, random.Random(s)) for s in range(20)]
    second = {round(_delays(schedule, 2)[1], 6) for schedule in schedules}
    assert len(second) > 10


def test_a_take_slower_than_anything_learned_is_polled_by_share_of_elapsed() -> None:
    policy = PollPolicy(tail_share=0.05, jitter=0.0)
    schedule = PollSchedule(policy, _uniform(40.0, 90.0), 0.0, random.Random(0))
    schedule.next_delay()
    schedule.observe(120.0)
    assert schedule.next_delay() == pytest.approx(6.0)


def _progress_schedule(learned: Learned | None = None, **policy: float) -> PollSchedule:
    """A Runway-like schedule (5 s between polls) in a lane that has seen progress before."""
    hints = Hints(progress=True)
    return PollSchedule(PollPolicy(**policy), learned, 5.0, random.Random(0), hints=hints)


def test_once_progress_was_seen_the_first_poll_comes_early_enough_for_a_second_reading() -> None:
    plain = PollSchedule(PollPolicy(), _uniform(40.0, 90.0), 5.0, random.Random(0))
    assert plain.next_delay() == pytest.approx(44.0)
    schedule = _progress_schedule(_uniform(40.0, 90.0), progress_first=0.5)
    assert schedule.next_delay() == pytest.approx(22.0), "half the 8 % quantile"


def test_a_schedule_that_sees_progress_tells_the_others_of_its_lane() -> None:
    hints = Hints()
    first = PollSchedule(PollPolicy(), _uniform(40.0, 90.0), 5.0, random.Random(0), hints=hints)
    first.observe(20.0, None)
    assert not hints.progress, "no progress in the answer: nothing learned"
    first.observe(25.0, 0.3)
    assert hints.progress
    later = PollSchedule(PollPolicy(), _uniform(40.0, 90.0), 5.0, random.Random(0), hints=hints)
    assert later.next_delay() == pytest.approx(0.5 * 44.0)


def test_one_reading_looks_again_halfway_to_the_latest_end_it_allows() -> None:
    schedule = _progress_schedule(_uniform(40.0, 90.0))
    schedule.next_delay()
    schedule.observe(20.0, 0.5)  # had it generated since submit, it would end at 40 s: no later
    assert schedule.next_delay() == pytest.approx(10.0), "halfway from 20 s to 40 s"
    slow = _progress_schedule(_uniform(40.0, 90.0))
    slow.next_delay()
    slow.observe(20.0, 0.1)  # could end as late as 200 s
    assert slow.next_delay() == pytest.approx(44.0 - 20.0), "no later than the plain first poll"


def _end(t1: float, p1: float, t2: float, p2: float) -> float:
    """Where a straight line through two readings reaches 100 %."""
    return t2 + (1.0 - p2) * (t2 - t1) / (p2 - p1)


def test_two_readings_far_apart_aim_at_the_latest_end_rounding_allows() -> None:
    schedule = _progress_schedule(_uniform(40.0, 90.0), progress_error=0.005, progress_margin=0.04)
    schedule.next_delay()
    schedule.observe(20.0, 0.1)
    schedule.observe(40.0, 0.5)  # 2 % per second: end at 65 s, give or take a second
    earliest, latest = _end(20.0, 0.095, 40.0, 0.505), _end(20.0, 0.105, 40.0, 0.495)
    assert 64.0 < earliest < 65.0 < latest < 66.0
    assert latest - earliest < 0.04 * latest
    assert schedule.next_delay() == pytest.approx(latest - 40.0)


def test_two_readings_close_together_look_again_halfway_to_the_earliest_end() -> None:
    schedule = _progress_schedule(_uniform(40.0, 90.0), progress_error=0.005, progress_margin=0.04)
    schedule.next_delay()
    schedule.observe(30.0, 0.30)
    schedule.observe(35.0, 0.37)  # 1.4 %/s: end at 80 s, give or take several seconds
    earliest, latest = _end(30.0, 0.295, 35.0, 0.375), _end(30.0, 0.305, 35.0, 0.365)
    assert latest - earliest > 0.04 * latest
    assert schedule.next_delay() == pytest.approx((35.0 + earliest) / 2 - 35.0)


def test_an_uncertain_end_too_close_for_another_look_is_aimed_at_its_latest() -> None:
    schedule = _progress_schedule(_uniform(40.0, 90.0), progress_error=0.005, progress_margin=0.001)
    schedule.next_delay()
    schedule.observe(50.0, 0.80)
    schedule.observe(55.0, 0.90)  # end at 60 s ± 0.8 s: no look allowed before it may be over
    assert schedule.next_delay() == pytest.approx(_end(50.0, 0.805, 55.0, 0.895) - 55.0)


def test_progress_is_used_before_anything_is_learned() -> None:
    schedule = PollSchedule(PollPolicy(), None, 5.0, random.Random(0))
    schedule.next_delay()
    schedule.observe(20.0, 0.5)
    assert schedule.next_delay() == 8.0, "one reading, nothing learned: within the cold cap"
    schedule.observe(25.0, 0.7)  # 4 %/s from 20 s: end at 32.5 s
    assert schedule.next_delay() == pytest.approx(_end(20.0, 0.505, 25.0, 0.695) - 25.0)
    schedule.observe(32.0, 0.995)
    assert schedule.next_delay() == 5.0, "about to end: as soon as the provider allows"


def test_progress_that_stops_making_sense_falls_back_to_the_plain_schedule() -> None:
    schedule = _progress_schedule(_uniform(40.0, 90.0), jitter=0.0, gap_share=math.inf, poll_cost=0.5)
    schedule.next_delay()
    schedule.observe(20.0, 0.5)
    schedule.observe(45.0, 0.5)  # stuck past the latest end one reading allowed (40 s)
    assert schedule.next_delay() == pytest.approx(math.sqrt(2 * 0.5 * (90.0 - 45.0)), rel=0.15)
    schedule.observe(50.0, 0.9)  # from 20 s: the end is due at 57.5 s
    schedule.observe(70.0, 0.9)  # and is overdue now
    assert schedule.next_delay() == pytest.approx(math.sqrt(2 * 0.5 * (90.0 - 70.0)), rel=0.3)


@pytest.mark.parametrize(
    ("queue_share", "most_polls", "late_share"), [(0.0, 4, 0.04), (0.15, 4, 0.04), (0.4, 8, 0.11)]
)
def test_linear_progress_rounded_to_hundredths_is_never_polled_early_when_sure(
    queue_share: float, most_polls: int, late_share: float
) -> None:
    """Progress linear after a queue, as Runway reports it: few polls, and the end aimed past.

    A long queue costs polls that find the task not started, makes the first reading's bound
    loose, so a take ending just after a look waits out the 5 s between polls.
    """
    learned = _uniform(40.0, 90.0)
    for i in range(101):
        gen = 40.0 + 0.5 * i
        queue = queue_share * gen
        schedule = _progress_schedule(learned)
        now, polls, early = 0.0, 0, 0
        while now < gen:
            now += schedule.next_delay()
            polls += 1
            progress = round(max(0.0, now - queue) / (gen - queue), 2) if now < gen else None
            early += now < gen and progress is not None and progress >= 0.99
            schedule.observe(now, progress)
        assert early == 0, f"{gen} s: a poll aimed past the end came before it"
        assert polls <= most_polls, f"{gen} s: {polls} polls"
        assert now <= max((1.0 + late_share) * gen, 42.5), f"{gen} s: noticed {now - gen:.1f} s late"


def test_a_cold_take_switches_to_the_learned_schedule_once_its_group_is_learned() -> None:
    learned: list[Learned | None] = [None]
    policy = PollPolicy(jitter=0.0, gap_share=math.inf)
    schedule = PollSchedule(policy, lambda: learned[0], 0.0, random.Random(0))
    assert _delays(schedule, 3) == [1.0, 2.0, 4.0], "cold: the geometric schedule"
    learned[0] = _uniform(40.0, 90.0)
    assert schedule.next_delay() == pytest.approx(44.0 - 7.0), "then straight to the low quantile"
    assert schedule.next_delay() == pytest.approx(math.sqrt(2 * policy.poll_cost * (90 - 44.0)), rel=0.15)


def test_a_low_quantile_that_moves_up_after_the_first_look_costs_no_extra_poll() -> None:
    """Takes finishing meanwhile can move the aim past a look already made: the next look is a
    gap away (or at the new aim, if later), never a quick second look at the first quantile."""
    learned = [_uniform(40.0, 90.0)]
    policy = PollPolicy(jitter=0.0)
    schedule = PollSchedule(policy, lambda: learned[0], 0.0, random.Random(0))
    assert schedule.next_delay() == pytest.approx(44.0)
    schedule.observe(44.0)
    learned[0] = _uniform(43.0, 93.0)  # its 8 % quantile is now 47 s
    gap = schedule.next_delay()
    assert gap == pytest.approx(policy.gap_share * 44.0), "a gap (3.3 s), not 47 − 44 = 3 s"
    learned[0] = _uniform(80.0, 130.0)  # slower takes yet: wait for the new first quantile
    schedule.observe(50.0)
    assert schedule.next_delay() == pytest.approx(84.0 - 50.0)


@pytest.mark.parametrize("scale", [0.0001, 0.02, 1.0, 12.0, 600.0])
def test_no_delay_is_ever_below_the_provider_minimum(scale: float) -> None:
    for seed in range(20):
        learned = PollSchedule(PollPolicy(), _uniform(0.7 * scale, 1.4 * scale), 5.0, random.Random(seed))
        unlearned = PollSchedule(PollPolicy(), None, 5.0, random.Random(seed))
        learned.observe(0.0, 0.1)
        learned.next_delay()
        learned.observe(0.5 * scale, 0.2)
        assert min(_delays(learned, 30)) >= 5.0
        assert min(_delays(unlearned, 30)) >= 5.0


def test_learned_steps_never_go_below_the_floor() -> None:
    policy = PollPolicy()
    schedule = PollSchedule(policy, _uniform(0.5, 1.0), 0.0, random.Random(11))
    _first, *later = _delays(schedule, 50)
    assert min(later) >= policy.floor


# -- GenerationTimes ------------------------------------------------------------------------------

GROUP = ("runway", "gen4_turbo", 5)


def test_generation_times_unknown_group_is_none() -> None:
    times = GenerationTimes()
    assert times.learned(GROUP) is None
    assert times.expected(GROUP) is None
    for _ in range(5):
        times.record(("runway", "gen4_turbo", 10), 85.0, 90.0)
    assert times.learned(GROUP) is None, "groups do not mix"


def test_generation_times_need_a_few_takes_before_they_count_as_learned() -> None:
    times = GenerationTimes()
    times.record(GROUP, 60.0, 62.0)
    times.record(GROUP, 50.0, 52.0)
    assert times.learned(GROUP) is None
    times.record(GROUP, 70.0, 72.0)
    learned = times.learned(GROUP)
    assert learned is not None
    assert learned.values == (51.0, 61.0, 71.0)


def test_an_interval_is_learned_at_its_midpoint_not_at_the_notice() -> None:
    times = GenerationTimes()
    for lower, upper in ((55.0, 60.0), (65.0, 70.0), (45.0, 50.0)):
        times.record(GROUP, lower, upper)
    assert times.expected(GROUP) == pytest.approx(57.5)


def test_a_take_done_at_its_first_poll_counts_a_little_below_that_poll() -> None:
    times = GenerationTimes()
    for _ in range(3):
        times.record(GROUP, 0.0, 50.0)
    learned = times.learned(GROUP)
    assert learned is not None
    assert learned.values == (45.0, 45.0, 45.0), "only 'by 50 s' is known: counted just below it"


def test_generation_times_forget_beyond_the_window() -> None:
    times = GenerationTimes(window=4)
    for lower in (1.0, 1.0, 1.0, 1.0, 10.0, 20.0, 30.0, 40.0):
        times.record(GROUP, lower, lower + 2.0)
    learned = times.learned(GROUP)
    assert learned is not None
    assert learned.values == (11.0, 21.0, 31.0, 41.0)


def test_a_low_quantile_of_few_values_is_not_put_above_where_it_belongs() -> None:
    """The k-th smallest of n draws sits at the k / (n + 1) quantile on average."""
    learned = Learned(tuple(float(v) for v in range(1, 20)))  # 19 values: the k-th at k / 20
    assert learned.quantile(0.05) == 1.0, "the smallest, not the second smallest"
    assert learned.quantile(0.10) == 2.0
    assert learned.median() == 10.0
    assert learned.quantile(0.01) == 1.0, "below the smallest: the smallest"
    assert learned.quantile(0.99) == 19.0


def test_learned_quantile_and_hazard_of_an_even_spread() -> None:
    learned = _uniform(0.0, 100.0, n=101)
    assert learned.quantile(0.05) == pytest.approx(5.0)
    assert learned.median() == pytest.approx(50.0)
    assert learned.hazard(50.0) == pytest.approx(1 / 50, rel=0.1), "U(0, 100): hazard 1/(100 − t)"
    assert learned.hazard(90.0) == pytest.approx(1 / 10, rel=0.1)
    assert learned.hazard(99.5) is None, "past the data: no estimate"


def _closed_loop(
    takes: int, seed: int, *, min_interval: float
) -> tuple[GenerationTimes, list[float], list[float]]:
    """Schedule, poll and learn in a loop, as the engine does, against U(40, 90) generation times.

    Gives what was learned, each take's lateness and each take's true generation time.
    """
    rng = random.Random(seed)
    times = GenerationTimes()
    lags: list[float] = []
    trues: list[float] = []
    for _ in range(takes):
        true = rng.uniform(40.0, 90.0)
        schedule = PollSchedule(PollPolicy(), times.learned(GROUP), min_interval, rng)
        lower, now = 0.0, 0.0
        while True:
            now += schedule.next_delay()
            schedule.observe(now)
            if now >= true:
                break
            lower = now
        times.record(GROUP, lower, now)
        lags.append(now - true)
        trues.append(true)
    return times, lags, trues


@pytest.mark.parametrize("min_interval", [1.0, 5.0])
def test_what_is_learned_does_not_drift_with_the_runners_own_lateness(min_interval: float) -> None:
    """The issue-12 feedback loop: learning submit-to-notice pushed the estimate up take after take.

    Compared with the true times of the same window (the last 100 takes), not with U(40, 90)'s
    own figures: a window of 100 draws is itself off by a few seconds now and then.
    """
    times, lags, trues = _closed_loop(2000, seed=3, min_interval=min_interval)
    learned = times.learned(GROUP)
    assert learned is not None
    window = Learned(tuple(sorted(trues[-100:])))
    slack = 1.0 + min_interval / 2  # a take is placed mid-gap: at most half a gap off either way
    assert learned.median() == pytest.approx(window.median(), abs=slack)
    assert learned.quantile(0.05) == pytest.approx(window.quantile(0.05), abs=5.0), "done-at-first: lower"
    assert 60.0 < window.median() < 72.0, "a plausible window of U(40, 90)"
    late = sorted(lags[-500:])
    assert statistics.median(late) < 3.0 + min_interval / 2


# -- BatchPoller ----------------------------------------------------------------------------------

Outcome = TaskStatus | Exception


def _poller(
    provider: FakeProvider,
    clock: VirtualClock,
    *,
    rate: float = 100.0,
    backoff: Backoff | None = None,
    coalesce: float = 1.0,
    max_failures: int = 40,
) -> BatchPoller:
    return BatchPoller(
        provider,
        RateLimiter(rate, clock),
        clock,
        retry=RetryPolicy(max_failures, float("inf"), backoff or Backoff(base=1.0, jitter=0.0)),
        rng=random.Random(1),
        coalesce=coalesce,
    )


async def _ask(
    poller: BatchPoller, clock: VirtualClock, due: Mapping[str, float], *, within: float = 3600.0
) -> dict[str, Outcome]:
    """Every ``status_at(handle, when)`` concurrently; each handle's status or exception.

    Gives up after ``within`` seconds of virtual time, so a handle that never gets an answer shows
    up as missing from the result instead of hanging the test.
    """
    results: dict[str, Outcome] = {}

    async def one(handle: str, when: float) -> None:
        try:
            results[handle] = await poller.status_at(handle, when)
        except Exception as exc:
            results[handle] = exc

    async with anyio.create_task_group() as outer:

        async def every() -> None:
            async with anyio.create_task_group() as tg:
                for handle, when in due.items():
                    tg.start_soon(one, handle, when)
            outer.cancel_scope.cancel()

        async def deadline() -> None:
            await clock.sleep(within)
            outer.cancel_scope.cancel()

        outer.start_soon(every)
        outer.start_soon(deadline)
    return results


@pytest.mark.anyio
async def test_tasks_due_together_go_out_in_batches_of_the_provider_size() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=3)
    poller = _poller(provider, clock)
    handles = [f"h{i}" for i in range(7)]
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, dict.fromkeys(handles, 10.0))
    assert {h: r.state for h, r in results.items() if isinstance(r, TaskStatus)} == dict.fromkeys(
        handles, TaskState.RUNNING
    )
    assert sorted(len(hs) for _, hs in provider.polls) == [1, 3, 3]
    asked = [h for _, hs in provider.polls for h in hs]
    assert sorted(asked) == handles, "each task asked exactly once"
    assert all(10.0 <= when < 10.1 for when, _ in provider.polls)
    assert poller.requests == 3


@pytest.mark.anyio
async def test_a_provider_without_batches_gets_one_task_per_request() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=1)
    poller = _poller(provider, clock, rate=2.0)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        await _ask(poller, clock, dict.fromkeys(("a", "b", "c", "d"), 10.0))
    assert [len(hs) for _, hs in provider.polls] == [1, 1, 1, 1]
    assert [when for when, _ in provider.polls] == [10.0, 10.5, 11.0, 11.5], "through the rate limiter"


@pytest.mark.anyio
async def test_tasks_due_far_apart_are_polled_separately_and_on_time() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=50)
    poller = _poller(provider, clock)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        await _ask(poller, clock, {"early": 10.0, "near": 10.4, "late": 30.0})
    assert [set(hs) for _, hs in provider.polls] == [{"early", "near"}, {"late"}]
    assert provider.polls[0][0] == pytest.approx(10.0)
    assert provider.polls[1][0] == pytest.approx(30.0)


@pytest.mark.anyio
async def test_with_unlimited_coalescing_every_waiting_task_rides_a_batch() -> None:
    """A batching lane (``Lane``) coalesces without limit: one more task in a request costs nothing."""
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=50)
    poller = _poller(provider, clock, coalesce=math.inf)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        await _ask(poller, clock, {"due": 10.0, "later": 30.0, "much-later": 300.0})
    assert [(when, set(hs)) for when, hs in provider.polls] == [(10.0, {"due", "later", "much-later"})]


@pytest.mark.anyio
async def test_a_batching_lane_lets_every_waiting_task_ride() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=100)
    lane = Lane(provider, LaneOptions(concurrency=4), clock, random.Random(0))
    async with driven(clock) as tg:
        tg.start_soon(lane.poller.run)
        await _ask(lane.poller, clock, {"due": 10.0, "much-later": 300.0})
    assert [(when, set(hs)) for when, hs in provider.polls] == [(10.0, {"due", "much-later"})]


@pytest.mark.anyio
async def test_a_rider_is_never_polled_before_its_not_before() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, max_poll_batch=50)
    poller = _poller(provider, clock, coalesce=math.inf)
    got: dict[str, TaskStatus] = {}

    async def one(handle: str, when: float, not_before: float) -> None:
        got[handle] = await poller.status_at(handle, when, not_before=not_before)

    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        async with anyio.create_task_group() as inner:
            inner.start_soon(one, "due", 10.0, 0.0)
            inner.start_soon(one, "fresh", 20.0, 12.0)
    assert [(when, hs) for when, hs in provider.polls] == [(10.0, ("due",)), (20.0, ("fresh",))]
    assert set(got) == {"due", "fresh"}


@pytest.mark.anyio
async def test_an_earlier_task_wakes_a_sleeping_poller() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock)
    poller = _poller(provider, clock)
    got: dict[str, Outcome] = {}

    async def later() -> None:
        got.update(await _ask(poller, clock, {"late": 500.0}))

    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        tg.start_soon(later)
        await clock.sleep(1.0)  # the poller is now asleep until 500
        got.update(await _ask(poller, clock, {"soon": 5.0}))
        assert clock.now() < 10.0
        await clock.sleep(600.0)
    assert [(when, hs) for when, hs in provider.polls] == [(5.0, ("soon",)), (500.0, ("late",))]
    assert set(got) == {"soon", "late"}


@pytest.mark.anyio
async def test_transient_errors_are_retried_and_the_waiter_still_gets_its_status() -> None:
    clock = VirtualClock()

    def answer(call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if call <= 2:
            raise TransientError("502 from the gateway", provider="fake", status=502)
        return {h: status(h, TaskState.SUCCEEDED) for h in handles}

    provider = FakeProvider(clock, answer=answer, max_poll_batch=5)
    poller = _poller(provider, clock, backoff=Backoff(base=1.0, factor=2.0, jitter=0.0))
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, {"a": 10.0, "b": 10.0})
    assert all(isinstance(r, TaskStatus) and r.state is TaskState.SUCCEEDED for r in results.values())
    assert len(provider.polls) == 3
    assert all(set(hs) == {"a", "b"} for _, hs in provider.polls), "the batch is retried together"
    times = [when for when, _ in provider.polls]
    assert times[2] - times[1] == pytest.approx(2.0), "the second retry waits the second backoff step"


@pytest.mark.anyio
async def test_poll_retries_wait_out_their_backoff() -> None:
    clock = VirtualClock()

    def answer(call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if call <= 2:
            raise TransientError("502 from the gateway", provider="fake", status=502)
        return all_running(call, handles)

    provider = FakeProvider(clock, answer=answer)
    poller = _poller(provider, clock, backoff=Backoff(base=1.0, factor=2.0, jitter=0.0))
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        await _ask(poller, clock, {"a": 10.0})
    times = [when for when, _ in provider.polls]
    assert times == [pytest.approx(t, abs=0.05) for t in (10.0, 11.0, 13.0)], "backoff 1 s, then 2 s"


@pytest.mark.anyio
async def test_retry_after_is_honoured_on_poll_retries() -> None:
    clock = VirtualClock()

    def answer(call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if call == 1:
            raise RateLimitedError("slow down", retry_after=7.0, provider="fake", status=429)
        return all_running(call, handles)

    provider = FakeProvider(clock, answer=answer)
    poller = _poller(provider, clock)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, {"a": 10.0})
    assert isinstance(results["a"], TaskStatus)
    assert [when for when, _ in provider.polls] == [pytest.approx(10.0), pytest.approx(17.0)]


@pytest.mark.anyio
async def test_a_terminal_error_reaches_every_waiter_of_the_batch() -> None:
    clock = VirtualClock()
    bad_key = TerminalError("bad key", kind=FailureKind.AUTH, provider="fake", status=401)

    def answer(_call: int, _handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        raise bad_key

    provider = FakeProvider(clock, answer=answer, max_poll_batch=10)
    poller = _poller(provider, clock)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, dict.fromkeys(("a", "b", "c"), 10.0))
    assert results == dict.fromkeys(("a", "b", "c"), bad_key)
    assert len(provider.polls) == 1, "a terminal error is not retried"


@pytest.mark.anyio
async def test_handles_missing_from_an_answer_are_asked_again() -> None:
    clock = VirtualClock()

    def answer(call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if call == 1:
            return {"a": status("a", TaskState.QUEUED)}
        return all_running(call, handles)

    provider = FakeProvider(clock, answer=answer, max_poll_batch=10)
    poller = _poller(provider, clock)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, dict.fromkeys(("a", "b", "c"), 10.0))
    assert [set(hs) for _, hs in provider.polls] == [{"a", "b", "c"}, {"b", "c"}]
    assert {h: r.state for h, r in results.items() if isinstance(r, TaskStatus)} == {
        "a": TaskState.QUEUED,
        "b": TaskState.RUNNING,
        "c": TaskState.RUNNING,
    }


@pytest.mark.anyio
async def test_a_provider_down_for_max_failures_gives_the_waiter_a_terminal_error() -> None:
    clock = VirtualClock()

    def answer(_call: int, _handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        raise TransientError("503", provider="fake", status=503)

    provider = FakeProvider(clock, answer=answer)
    poller = _poller(provider, clock, max_failures=3)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, {"a": 1.0})
    assert len(provider.polls) == 3
    assert isinstance(results["a"], TerminalError)


@pytest.mark.anyio
async def test_a_handle_never_answered_for_ends_in_an_error() -> None:
    clock = VirtualClock()
    provider = FakeProvider(clock, answer=lambda _call, _handles: {})
    poller = _poller(provider, clock, backoff=Backoff(base=1.0, cap=10.0, jitter=0.0), max_failures=5)
    async with driven(clock) as tg:
        tg.start_soon(poller.run)
        results = await _ask(poller, clock, {"ghost": 1.0}, within=3600.0)  # 360+ polls
    assert len(provider.polls) <= 5
    assert isinstance(results.get("ghost"), Exception)
