"""The one retry rule (runner/engine/retrying.py) and its three users: submits, polls and downloads.

Unit tests drive :class:`Retries` by moving a virtual clock by hand; the engine tests run a take
against an in-process provider at our own ``Provider`` seam on a driven virtual clock, so an hour
of retrying takes milliseconds and every time asserted is the clock's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from runner.engine.collect import CollectOptions
from runner.engine.core import Engine, EngineOptions
from runner.engine.download import Downloaded
from runner.engine.events import Bus, Event, EventKind
from runner.engine.lanes import LaneOptions
from runner.engine.retrying import Backoff, Retries, Retry, RetryPolicy, Step
from runner.errors import NotSentError, RateLimitedError, TransientError
from runner.manifest.images import ImageEncoder
from runner.providers.base import SubmitRequest, Submitted, TaskState, TaskStatus
from tests.engine.fakes import FakeProvider, VirtualClock, driven, open_journal
from tests.providers.helpers import make_take

pytestmark = pytest.mark.anyio

STEADY = Backoff(base=1.0, factor=2.0, cap=8.0, jitter=0.0)


# -- Backoff --------------------------------------------------------------------------------------


def test_backoff_grows_geometrically_and_is_capped() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.0)
    rng = random.Random(0)
    delays = [backoff.delay(n, rng) for n in range(1, 10)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.delay(0, rng) == 1.0, "attempt numbers start at 1; 0 is treated as the first"


def test_backoff_jitter_stays_within_its_band_on_both_sides() -> None:
    backoff = Backoff(base=2.0, factor=3.0, cap=100.0, jitter=0.25)
    rng = random.Random(7)
    for attempt in range(1, 8):
        step = min(100.0, 2.0 * 3.0 ** (attempt - 1))
        ratios = [backoff.delay(attempt, rng) / step for _ in range(300)]
        assert min(ratios) >= 0.75
        assert max(ratios) <= 1.25
        assert min(ratios) < 0.85 and max(ratios) > 1.15, "the jitter spreads over the whole band"


def test_capped_steps_are_jittered_around_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=10.0, jitter=0.2)
    rng = random.Random(3)
    delays = [backoff.delay(30, rng) for _ in range(200)]
    assert all(8.0 <= d <= 12.0 for d in delays)


def test_retry_after_wins_only_when_longer() -> None:
    backoff = Backoff(base=1.0, jitter=0.0)
    rng = random.Random(0)
    assert backoff.delay(1, rng, retry_after=30.0) == 30.0
    assert backoff.delay(3, rng, retry_after=0.5) == 4.0
    assert backoff.delay(2, rng, retry_after=None) == 2.0
    assert backoff.delay(2, rng, retry_after=0.0) == 2.0


# -- Retries: the two stops, Retry-After, the floor -------------------------------------------------


def _retries(policy: RetryPolicy, clock: VirtualClock) -> Retries:
    return Retries(policy, clock, random.Random(0), Step.SUBMIT, "runway")


def test_the_attempt_limit_counts_failures_in_a_row_including_the_last() -> None:
    clock = VirtualClock()
    retries = _retries(RetryPolicy(attempts=4, total=1e9, backoff=STEADY), clock)
    answers = [retries.after(TransientError("503", provider="runway")) for _ in range(4)]
    assert [r.delay if r else None for r in answers] == [1.0, 2.0, 4.0, None], "4 tries in all"
    assert retries.spent().startswith("submit failed 4 times")


def test_no_retry_starts_after_the_total_time() -> None:
    clock = VirtualClock()
    retries = _retries(RetryPolicy(attempts=1000, total=20.0, backoff=STEADY), clock)
    waited = []
    while (retry := retries.after(TransientError("503", provider="runway"))) is not None:
        waited.append(retry.delay)
        clock.t += retry.delay
    assert waited == [1.0, 2.0, 4.0, 8.0], "the next wait (8 s) would end at 23 s, past the 20 s total"
    assert retries.spent() == "submit failed 5 times in 15s"


def test_retry_after_and_the_floor_lengthen_a_wait_never_shorten_it() -> None:
    clock = VirtualClock()
    retries = _retries(RetryPolicy(attempts=10, total=1e9, backoff=STEADY), clock)
    first = retries.after(RateLimitedError("429", provider="runway"), retry_after=30.0)
    second = retries.after(TransientError("503", provider="runway"), floor=5.0)
    third = retries.after(TransientError("503", provider="runway"), retry_after=0.5, floor=0.1)
    assert (first and first.delay, second and second.delay, third and third.delay) == (30.0, 5.0, 4.0)


def test_reset_starts_a_new_run_of_failures() -> None:
    clock = VirtualClock()
    retries = _retries(RetryPolicy(attempts=2, total=10.0, backoff=STEADY), clock)
    assert retries.after(TransientError("x", provider="runway")) is not None
    clock.t = 100.0
    retries.reset()
    retry = retries.after(TransientError("y", provider="runway"))
    assert retry is not None and retry.failures == 1, "the old failure and its start time are gone"


def test_a_retry_says_what_is_retried_and_why() -> None:
    retries = Retries(RetryPolicy(5, 60.0, STEADY), VirtualClock(), random.Random(0), Step.POLL, "runware")
    retry = retries.after(TransientError("HTTP 502", provider="runware"), tasks=3)
    assert retry is not None
    assert (retry.step, retry.provider, retry.failures, retry.tasks) == (Step.POLL, "runware", 1, 3)
    assert str(retry) == "poll of 3 tasks failed (1), retrying in 1.0s: runware: HTTP 502"


# -- the users: a submit, a poll and a download each stop by time too -------------------------------


class Unreachable(FakeProvider):
    async def submit(self, request: SubmitRequest) -> Submitted:
        self.submits.append((self.clock.now(), request.take.label))
        raise NotSentError("connection refused", provider=self.name)


def _succeeded(_call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
    url = "https://cdn.example/x.mp4"
    return {
        h: TaskStatus(h, TaskState.SUCCEEDED, "SUCCEEDED", output_url=url, cost_usd=0.25) for h in handles
    }


class BrokenCDN:
    """A downloader whose every fetch fails in a way worth retrying."""

    def __init__(self) -> None:
        self.fetches = 0

    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        self.fetches += 1
        raise TransientError("connection reset", provider=provider, take=take, url=url)


async def _run(
    tmp_path: Path, provider: FakeProvider, downloader: BrokenCDN, lane: LaneOptions, **options: Any
) -> tuple[list[Event], dict[str, Any]]:
    """One take through an engine over ``provider``, its events kept; the take's ledger row."""
    take = make_take(provider.name, shot="a")
    journal, records = open_journal(tmp_path, [take])
    events: list[Event] = []
    opts = EngineOptions(lanes={provider.name: lane}, clock=provider.clock, **options)
    engine = Engine({provider.name: provider}, downloader=downloader, encoder=ImageEncoder(),
                    journal=journal, bus=Bus(events.append), options=opts)  # fmt: skip
    assert isinstance(provider.clock, VirtualClock)
    async with driven(provider.clock):
        await engine.run([take], records)
    ((_, row),) = journal.sync.rows_after(0)
    return events, row


def _retries_of(events: list[Event]) -> list[Retry]:
    return [e.retry for e in events if e.kind is EventKind.RETRYING and e.retry is not None]


async def test_a_submit_that_never_gets_through_stops_at_the_total_time(tmp_path: Path) -> None:
    clock = VirtualClock()
    provider = Unreachable(clock, name="runway")
    policy = RetryPolicy(attempts=1000, total=40.0, backoff=STEADY)
    lane = LaneOptions(concurrency=1)
    events, row = await _run(
        tmp_path, provider, BrokenCDN(), lane, submit_retry=policy, unreachable_after=1e9
    )
    retries = _retries_of(events)
    assert all(r.step is Step.SUBMIT and r.provider == "runway" for r in retries)
    assert [r.delay for r in retries] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert len(provider.submits) == 8, "the 8th failure came at 39 s; another wait would end past 40 s"
    assert row["failure_kind"] == "provider" and "submit failed 8 times in 39s" in row["failure_message"]


class Down(FakeProvider):
    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        self.polls.append((self.clock.now(), tuple(handles)))
        raise TransientError("HTTP 502", provider=self.name, status=502)


async def test_polls_that_keep_failing_stop_at_the_total_time_and_fail_the_take(tmp_path: Path) -> None:
    provider = Down(VirtualClock(), name="aimlapi")
    lane = LaneOptions(concurrency=1, poll_retry=RetryPolicy(attempts=1000, total=60.0, backoff=STEADY))
    events, row = await _run(tmp_path, provider, BrokenCDN(), lane)
    retries = _retries_of(events)
    assert retries and all(r.step is Step.POLL for r in retries)
    failures_before_giving_up = len(retries) + 1
    assert len(provider.polls) == failures_before_giving_up
    first_failure = provider.polls[0][0]
    assert provider.polls[-1][0] - first_failure <= 60.0, "no poll after the policy's total time"
    assert row["failure_kind"] == "provider"
    assert f"gave up after {failures_before_giving_up} polls in a row failed" in row["failure_message"]


async def test_a_download_that_keeps_failing_stops_at_the_total_time_paid_not_saved(tmp_path: Path) -> None:
    provider = FakeProvider(VirtualClock(), answer=_succeeded, name="runway")
    cdn = BrokenCDN()
    policy = RetryPolicy(attempts=1000, total=30.0, backoff=STEADY)
    events, row = await _run(
        tmp_path, provider, cdn, LaneOptions(concurrency=1), collect=CollectOptions(policy)
    )
    retries = _retries_of(events)
    assert [r.delay for r in retries] == [1.0, 2.0, 4.0, 8.0, 8.0], "the next would end past 30 s"
    assert all(r.step is Step.DOWNLOAD and r.provider == "runway" for r in retries)
    assert cdn.fetches == 6
    assert row["failure_kind"] == "download" and row["cost_usd"] == 0.25, "paid: the cost stays"
    message = row["failure_message"]
    assert message.startswith("paid but not saved: download failed 6 times in 23s: ")
    assert message.endswith("https://cdn.example/x.mp4: connection reset")


async def test_a_broken_download_uses_only_download_attempts_and_names_its_error(tmp_path: Path) -> None:
    provider = FakeProvider(VirtualClock(), answer=_succeeded, name="runway")
    cdn = BrokenCDN()
    policy = RetryPolicy(attempts=3, total=1e9, backoff=STEADY)
    _, row = await _run(tmp_path, provider, cdn, LaneOptions(concurrency=1), collect=CollectOptions(policy))
    assert cdn.fetches == 3
    assert len(provider.polls) == 1, "a broken body is not a reason to ask the provider again"
    assert "download failed 3 times" in row["failure_message"] and "None" not in row["failure_message"]
