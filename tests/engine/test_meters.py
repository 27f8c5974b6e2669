"""AdaptiveSlots and RateLimiter (runner/engine/meters.py): limits that hold under many concurrent callers.

Time here is virtual (tests/engine/fakes.py): the rate tests count admissions per window of the
limiter's own clock, never wall time.
"""

from __future__ import annotations

import itertools

import anyio
import anyio.lowlevel
import pytest

from runner.engine.meters import AdaptiveSlots, RateLimiter
from tests.engine.fakes import VirtualClock, driven

pytestmark = pytest.mark.anyio


async def _hold(slots: AdaptiveSlots, peak: list[int], spins: int, *, clean: bool = True) -> None:
    await slots.acquire()
    peak[0] = max(peak[0], slots.in_use)
    for _ in range(spins):
        await anyio.lowlevel.checkpoint()
    await slots.release(clean=clean)


async def _settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


# -- AdaptiveSlots --------------------------------------------------------------------------------


async def test_slots_never_admit_more_than_the_limit() -> None:
    slots = AdaptiveSlots(3)
    peak = [0]
    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(_hold, slots, peak, 1 + i % 5)
    assert peak[0] == 3, "never more than the cap, and the cap used in full"
    assert slots.high_water == 3
    assert slots.in_use == 0


def test_slots_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cap"):
        AdaptiveSlots(0)


async def test_shrink_runs_one_fewer_than_in_use_and_never_below_one() -> None:
    slots = AdaptiveSlots(5)
    for _ in range(4):
        await slots.acquire()
    await slots.shrink()  # the 4th submit met a 429: the provider takes 3
    assert slots.limit == 3
    await slots.shrink()
    assert slots.limit == 2
    for _ in range(6):
        await slots.shrink()
    assert slots.limit == 1
    for _ in range(4):
        await slots.release(clean=False)
    assert slots.limit == 1, "unclean releases do not grow the limit"


async def test_after_a_shrink_fewer_are_admitted_at_once() -> None:
    slots = AdaptiveSlots(4, regrow_after=1000)
    for _ in range(3):
        await slots.acquire()
    await slots.shrink()
    assert slots.limit == 2
    for _ in range(3):
        await slots.release(clean=False)
    peak = [0]
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(_hold, slots, peak, 3)
    assert peak[0] == 2


async def test_clean_releases_regrow_the_limit_up_to_the_cap_only() -> None:
    slots = AdaptiveSlots(3, regrow_after=2)
    for _ in range(3):
        await slots.acquire()
    await slots.shrink()
    await slots.shrink()
    assert slots.limit == 1
    await slots.release(clean=True)
    assert slots.limit == 1, "one clean completion is not yet a run of them"
    await slots.release(clean=False)  # does not count towards the run...
    await slots.release(clean=True)
    assert slots.limit == 2  # ...so growing took two clean ones
    for _ in range(10):  # many more clean completions: back to the cap, never above
        await slots.acquire()
        await slots.release(clean=True)
    assert slots.limit == 3
    assert slots.limit <= slots.cap


async def test_shrink_restarts_the_count_towards_regrowing() -> None:
    slots = AdaptiveSlots(4, regrow_after=3)
    for _ in range(4):
        await slots.acquire()
    await slots.shrink()  # limit 3
    await slots.release(clean=True)
    await slots.release(clean=True)
    await slots.shrink()  # in use 2 → limit 1, and the two clean ones are forgotten
    assert slots.limit == 1
    await slots.release(clean=True)
    await slots.release(clean=True)
    assert slots.limit == 1, "only two clean completions since the last 429"
    await slots.acquire()
    await slots.release(clean=True)
    assert slots.limit == 2


async def test_a_regrown_limit_admits_waiters() -> None:
    """Growing the limit wakes callers already waiting (they must not stay parked)."""
    slots = AdaptiveSlots(2, regrow_after=1)
    await slots.acquire()
    await slots.acquire()
    await slots.shrink()  # limit 1 with 2 in use
    admitted: list[int] = []

    async def waiter(n: int) -> None:
        await slots.acquire()
        admitted.append(n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, 1)
        tg.start_soon(waiter, 2)
        await _settle()
        assert admitted == []
        await slots.release(clean=True)  # 1 in use, limit grows back to 2: one may go
        await _settle()
        assert len(admitted) == 1
        await slots.release(clean=True)
        await _settle()
        assert sorted(admitted) == [1, 2]
    assert slots.in_use == 2


# -- RateLimiter ----------------------------------------------------------------------------------


def _max_in_window(times: list[float], window: float) -> int:
    eps = 1e-9
    return max(sum(1 for t in times if start <= t < start + window - eps) for start in times)


async def test_rate_limiter_spaces_concurrent_requests() -> None:
    clock = VirtualClock(start=100.0)
    limiter = RateLimiter(2.0, clock)
    admitted: list[float] = []

    async def request() -> None:
        await limiter.wait()
        admitted.append(clock.now())

    async with driven(clock), anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(request)
    admitted.sort()
    assert admitted[0] == pytest.approx(100.0), "the first request goes at once"
    assert admitted[-1] == pytest.approx(104.5), "ten requests at 2/s take 4.5 s"
    assert _max_in_window(admitted, 1.0) == 2
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    assert min(gaps) == pytest.approx(0.5)


async def test_rate_limiter_does_not_save_up_idle_time_beyond_its_burst() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(1.0, clock, burst=3)
    admitted: list[float] = []

    async def request() -> None:
        await limiter.wait()
        admitted.append(clock.now())

    async with driven(clock):
        await clock.sleep(3600.0)  # an hour idle
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(request)
    admitted.sort()
    start = 3600.0
    assert admitted[:3] == [pytest.approx(start)] * 3, "a burst of 3 after idling"
    assert admitted[3:] == [pytest.approx(start + n) for n in range(1, 6)], "then one per second"
    assert _max_in_window(admitted, 1.0) == 3


async def test_rate_limiter_sequential_callers_are_spaced_by_the_interval() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(4.0, clock)
    admitted: list[float] = []
    async with driven(clock):
        for _ in range(5):
            await limiter.wait()
            admitted.append(clock.now())
        await clock.sleep(10.0)
        await limiter.wait()  # after a pause: at once again
        admitted.append(clock.now())
    assert admitted == [pytest.approx(t) for t in (0.0, 0.25, 0.5, 0.75, 1.0, 11.0)]


def test_rate_limiter_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0.0, VirtualClock())


async def test_fresh_rate_limiter_allows_its_burst_at_once() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(1.0, clock, burst=3)
    admitted: list[float] = []

    async def request() -> None:
        await limiter.wait()
        admitted.append(clock.now())

    async with driven(clock), anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(request)
    assert admitted == [0.0, 0.0, 0.0]
