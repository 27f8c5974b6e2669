"""When to ask a provider again: per-task poll schedules, and the batching poller.

Polling must be quick *and* frugal at any time scale — a real clip takes about a minute, the
simulator's a fraction of a second, and nobody tells the runner which. So:

* Before a (provider, model, duration) group has :data:`~runner.engine.gentimes.MIN_LEARNED` finished
  takes, a task is polled on a short geometric schedule (``first`` seconds, doubling, capped).
* Once it has, the schedule asks :class:`~runner.engine.gentimes.Learned` (unbiased, interval-censored
  generation times — see :mod:`runner.engine.gentimes`). The first poll goes out when a small share
  (``first_quantile``) of the group's takes is done. After that the gap follows the hazard *h* —
  of the takes still running now, the share that ends per second: a poll is worth ``poll_cost``
  seconds of lateness, and the gap that balances the two is ``sqrt(2 × poll_cost / h)``
  (a gap *g* costs about *h·g²/2* expected lateness per poll). Where ends are dense polls come
  quickly. In the thin early part of the distribution the hazard alone would spread them out,
  just where a late notice is the largest share of a (short) take's time, so no gap is longer
  than ``gap_share`` of the elapsed time. A take slower than anything learned is polled every
  ``tail_share`` of its elapsed time.
* Where the provider reports progress (Runway: about linear in time once out of its queue, in
  hundredths), the lane's first polls come at ``progress_first`` of the first quantile, so that
  two readings can be far apart. One reading bounds the end (at ``t / p`` had it generated since
  submit; it queued first, so no later): look again halfway there, or where the plain schedule
  would if sooner. Two readings, each off by up to ``progress_error``, give the earliest and the
  latest end; once those are within ``progress_margin`` of each other, or there is no room for a
  look before the earliest, the poll goes at the latest — it never lands just before the end only
  to wait ``min_interval`` again. Otherwise look once more halfway to the earliest end.
* A batching provider (Runware: one request polls every task in flight) costs one request
  whatever rides in it, so every waiting task rides every request (the lane coalesces without
  limit), and when the next one goes out is the lane's :class:`~runner.engine.cadence.BatchCadence`'s
  to say, from all tasks in flight — not from any one task's schedule.
* The first wave of a per-task provider starts together, before anything is learned: the cold
  schedules of a lane's tasks are staggered (``phase``: each starts at a different point of the
  geometric sequence), so that between them the wave is looked at often while each task is
  looked at rarely; the first of them seen done is news for the rest (:mod:`runner.engine.cadence`).
* Never more often than the provider asks (``min_interval``; Runway: 5 s per task).

:class:`BatchPoller` is the one place polls leave from. Tasks due at about the same time are
coalesced into one request where the provider allows it (Runware takes many getResponse tasks in
one POST), and every request passes the provider's :class:`~runner.engine.meters.RateLimiter`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from runner.clock import Clock
from runner.engine.gentimes import GenerationTimes, Group, Learned
from runner.engine.meters import RateLimiter
from runner.engine.retrying import Retries, Retry, RetryPolicy, Step
from runner.errors import (
    FailureKind,
    PollGaveUpError,
    ProviderError,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.providers.base import Provider, TaskStatus

#: A batch refused for these reasons fails its tasks at once: the key or account, not the request.
_ACCOUNT_KINDS = frozenset({FailureKind.AUTH, FailureKind.CREDITS})
#: The unlearned schedule counts at most this many steps: the gap is long capped by then.
_COLD_STEPS = 64.0

__all__ = [
    "BatchPoller",
    "GenerationTimes",
    "Group",
    "Hints",
    "Learned",
    "PollPolicy",
    "PollSchedule",
]


@dataclass(frozen=True)
class PollPolicy:
    first: float = 1.0  # unlearned groups: first poll this many seconds after submit...
    factor: float = 2.0  # ...then gaps growing by this factor...
    cap: float = 8.0  # ...up to this (a first wave's lateness is at most this)
    first_quantile: float = 0.08  # learned groups: first poll when this share of takes is done
    poll_cost: float = 1.0  # seconds of lateness one poll request is worth (hazard rule)...
    gap_share: float = 0.075  # ...but no gap longer than this share of the elapsed time
    tail_share: float = 0.05  # slower than anything learned: poll every this share of elapsed
    batch_first: float = 1.0  # batching providers, unlearned: a batch this often at most...
    batch_cold_share: float = 0.1  # ...and this share of the elapsed time until the first end
    batch_cost: float = 0.06  # seconds of lateness per task in flight one batch is worth...
    batch_gap_share: float = 0.075  # ...but no gap longer than this share of a task's elapsed
    sibling_share: float = 0.1  # per-task providers: a wave started within this share of a gen
    progress_first: float = 0.5  # progress reported: first look at this share of the first quantile
    progress_error: float = 0.005  # ± this much in each progress reading (two decimals)
    progress_margin: float = 0.04  # readings pin the end within this share of it: aim at its latest
    floor: float = 0.5  # never a gap shorter than this
    jitter: float = 0.1  # ± share of each learned gap, so tasks do not poll in lockstep


@dataclass
class Hints:
    """What a lane's schedules found out about the provider's answers, shared between them."""

    progress: bool = False  # some task reported its progress


class PollSchedule:
    """Delays between the polls of one task, from its submit on.

    It keeps its own idea of the elapsed time (the sum of the delays it gave) unless told the
    truth with :meth:`observe`, which also takes the provider's progress where there is one.
    ``learned`` may be a callable: it is asked again at every poll, so a take submitted before its
    group was learned (the first wave of a run) switches to the learned schedule as soon as it is.
    """

    def __init__(
        self,
        policy: PollPolicy,
        learned: Learned | Callable[[], Learned | None] | None,
        min_interval: float,
        rng: random.Random,
        *,
        cadence: Callable[[bool], float] | None = None,
        hints: Hints | None = None,
        phase: float = 0.0,
    ) -> None:
        self._policy = policy
        self._hints = hints if hints is not None else Hints()
        self._source = learned
        self._min = min_interval
        self._rng = rng
        self._cadence = cadence  # batching: the lane's, for every task in flight at once
        self._cold = phase  # unlearned: where in the geometric sequence this task starts (0–1)
        self._aimed = False  # the learned schedule's first look is out (the quantile may move)
        self._elapsed = 0.0
        self._polled = False  # a poll has answered (batching: it waits the minimum for the next)
        self._readings: list[tuple[float, float]] = []

    def observe(self, elapsed: float, progress: float | None = None) -> None:
        """A poll answered ``elapsed`` seconds after submit, with the provider's progress (0–1)."""
        self._elapsed = elapsed
        self._polled = True
        if progress is None or not 0.0 < progress <= 1.0:
            return
        self._hints.progress = True
        if not self._readings or progress > self._readings[-1][1]:
            self._readings.append((elapsed, progress))

    def next_delay(self) -> float:
        raw = self._cadence(self._polled) if self._cadence is not None else self._raw_delay()
        delay = max(raw, self._min)
        self._elapsed += delay
        return delay

    def _raw_delay(self) -> float:
        learned = self._source() if callable(self._source) else self._source
        aimed = self._progress_aim(learned)
        if aimed is not None:  # the task's own account beats what other takes did
            return max(self._policy.floor, aimed - self._elapsed)
        return self._plain_delay(learned)

    def _plain_delay(self, learned: Learned | None) -> float:
        p = self._policy
        if learned is None:  # the count is capped before the power: queued for hours, no overflow
            self._cold = min(self._cold + 1, _COLD_STEPS)
            steps = self._cold - 1
            if p.factor > 1 and p.cap > p.first > 0:  # one step past the cap is as far as it goes
                steps = min(steps, math.log(p.cap / p.first, p.factor) + 1)
            return min(p.cap, p.first * math.pow(p.factor, steps))
        first = learned.quantile(p.first_quantile)
        if self._hints.progress:  # early enough for a second reading long before the fastest end
            first *= p.progress_first
        if self._elapsed < first and not self._aimed:  # the first look of the learned schedule
            self._aimed = True
            return max(p.floor, first - self._elapsed)
        return max(p.floor, self._jittered(self._gap(learned)), first - self._elapsed)

    def _gap(self, learned: Learned) -> float:
        p = self._policy
        hazard = learned.hazard(self._elapsed)
        if hazard is None:
            return p.tail_share * max(self._elapsed, learned.median())
        return min(math.sqrt(2.0 * p.poll_cost / hazard), p.gap_share * self._elapsed)

    def _jittered(self, gap: float) -> float:
        return gap * (1.0 + self._policy.jitter * (2.0 * self._rng.random() - 1.0))

    def _progress_aim(self, learned: Learned | None) -> float | None:
        """When to look next by the task's progress readings, or None to use the plain schedule."""
        if not self._readings:
            return None
        if self._readings[-1][1] >= 0.99:
            return self._elapsed  # about to end: as soon as the provider allows
        if len(self._readings) == 1:
            return self._second_look(learned)
        earliest, latest = self._end_bounds()
        if latest <= self._elapsed:
            return None  # overdue by its own readings: fall back to the plain schedule
        sure = latest - earliest <= self._policy.progress_margin * latest
        if sure or earliest < self._elapsed + self._min <= latest < math.inf:
            return latest  # pinned down, or no room for another look first: just past the end
        return max(self._elapsed + self._min, (self._elapsed + earliest) / 2)

    def _second_look(self, learned: Learned | None) -> float | None:
        """One reading: halfway to the latest end it allows, or where the plain schedule looks."""
        t1, p1 = self._readings[0]
        latest = t1 / p1  # the end had it generated since submit (it queued first: no later)
        if latest <= self._elapsed:
            return None  # not progressing as it said: the plain schedule
        aim = (self._elapsed + latest) / 2
        if learned is None:
            return min(aim, self._elapsed + self._policy.cap)
        plain = max(learned.quantile(self._policy.first_quantile), self._elapsed + self._gap(learned))
        return min(aim, plain)

    def _end_bounds(self) -> tuple[float, float]:
        """The earliest and latest end the first and latest readings allow, each off by rounding."""
        (t1, p1), (t2, p2) = self._readings[0], self._readings[-1]
        off = self._policy.progress_error

        def end(first: float, latest: float) -> float:
            return t2 + (1.0 - latest) * (t2 - t1) / (latest - first) if latest > first else math.inf

        return end(p1 - off, p2 + off), end(p1 + off, p2 - off)


@dataclass
class _Waiter:
    due: float  # poll by then at the latest
    ride_from: float  # may ride along in a batch that goes out anyway from then on
    done: anyio.Event = field(default_factory=anyio.Event)
    status: TaskStatus | None = None
    error: Exception | None = None
    retries: Retries | None = None  # made at the first failure of this poll
    wait_until: float = float("-inf")  # a long Retry-After is waited out until then at most
    last_try: bool = False  # that wait ends before the provider is ready: one last look
    not_before: float = -math.inf  # the provider's minimum interval since this task's last poll


class BatchPoller:
    """Polls one provider's tasks when they fall due, many per request where the provider allows.

    A take calls :meth:`status_at` and gets the task's status at (or just after) that time; the
    poller's own loop (:meth:`run`, started once in the engine's task group) does the requests.
    Where the provider batches, a task due within ``coalesce`` seconds rides along with a batch
    that is going out anyway — never before its ``not_before``, and never on a retry.
    Transient errors are retried here under the lane's :class:`~runner.engine.retrying.RetryPolicy`
    (never sooner than the provider's ``min_poll_interval``), so a take only ever sees a status,
    or a :class:`TerminalError`: a bad key, or polls that kept failing (or not mentioning the
    task) until the policy gave up (:class:`PollGaveUpError`). A 429 whose Retry-After lies
    beyond the policy's total time is waited out for as long as the take's ``patience`` allows
    (its deadline and timeout), then looked at once more. A batching provider's refusal of a
    whole request is a failed poll like any other: it fails none of the tasks riding in it by
    itself (a bad key or account aside). Each retry is reported to ``on_retry``; each answer goes to
    ``on_answer`` before any of its waiters wakes.
    """

    def __init__(
        self,
        provider: Provider,
        rate: RateLimiter,
        clock: Clock,
        *,
        retry: RetryPolicy,
        rng: random.Random,
        coalesce: float = 1.0,
        on_retry: Callable[[Retry], None] | None = None,
        on_answer: Callable[[Mapping[str, TaskStatus]], None] | None = None,
    ) -> None:
        self._provider = provider
        self._on_answer = on_answer
        self._rate = rate
        self._clock = clock
        self._policy = retry
        self._rng = rng
        self._coalesce = coalesce
        self._on_retry = on_retry
        self._waiting: dict[str, _Waiter] = {}
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleep_until = float("inf")
        self.requests = 0

    async def status_at(
        self, handle: str, when: float, *, not_before: float | None = None, patience: float = 0.0
    ) -> TaskStatus:
        """The task's status at ``when``; ``patience``: seconds from now it may wait on a 429."""
        early = when - self._coalesce if self._provider.max_poll_batch > 1 else when
        waiter = _Waiter(due=when, ride_from=max(early, not_before if not_before is not None else early))
        waiter.wait_until = self._clock.now() + patience
        if not_before is not None:
            waiter.not_before = not_before
        self._waiting[handle] = waiter
        self._wake_if_earlier(when)
        try:
            await waiter.done.wait()
        finally:
            if self._waiting.get(handle) is waiter:
                del self._waiting[handle]
        if waiter.error is not None:
            raise waiter.error
        assert waiter.status is not None
        return waiter.status

    def hurry(self, handle: str) -> None:
        """Poll ``handle`` as soon as the provider allows: news (a sibling ended) made its planned
        poll late. A poll being retried keeps its backoff."""
        waiter = self._waiting.get(handle)
        if waiter is None or waiter.retries is not None or waiter.done.is_set():
            return
        soonest = max(self._clock.now(), waiter.not_before)
        if soonest < waiter.due:
            waiter.due = soonest
            waiter.ride_from = min(waiter.ride_from, soonest)
            self._wake_if_earlier(soonest)

    def _wake_if_earlier(self, when: float) -> None:
        if self._sleep_scope is not None and when < self._sleep_until:
            self._sleep_scope.cancel()

    async def run(self) -> None:
        """Forever: sleep until the earliest due task, then poll everything due near it."""
        async with anyio.create_task_group() as tg:
            while True:
                await self._sleep_until_due()
                for batch in self._take_due_batches():
                    await self._rate.wait()
                    tg.start_soon(self._poll, batch)

    async def _sleep_until_due(self) -> None:
        pending = [w.due for w in self._waiting.values() if not w.done.is_set()]
        self._sleep_until = min(pending, default=self._clock.now() + 3600.0)
        with anyio.CancelScope() as scope:
            self._sleep_scope = scope
            await self._clock.sleep(self._sleep_until - self._clock.now())
        self._sleep_scope = None

    def _take_due_batches(self) -> list[dict[str, _Waiter]]:
        now = self._clock.now()
        due = sorted((w.due, h) for h, w in self._waiting.items() if w.due <= now)
        size = max(1, self._provider.max_poll_batch)
        if due and size > 1:
            riders = sorted((w.due, h) for h, w in self._waiting.items() if w.ride_from <= now < w.due)
            due += riders[: -len(due) % size]
        batches: list[dict[str, _Waiter]] = []
        for start in range(0, len(due), size):
            batches.append({h: self._waiting.pop(h) for _, h in due[start : start + size]})
        return batches

    async def _poll(self, batch: dict[str, _Waiter]) -> None:
        self.requests += 1
        try:
            answers = await self._provider.poll(list(batch))
        except TerminalError as exc:
            if self._provider.max_poll_batch > 1 and exc.kind not in _ACCOUNT_KINDS:
                self._retry(batch, exc)  # about the request, not a task: no task fails by it alone
            else:
                self._fail(batch, exc)
        except TransientError as exc:
            self._retry(batch, exc)
        else:
            self._deliver(batch, answers)

    def _deliver(self, batch: Mapping[str, _Waiter], answers: Mapping[str, TaskStatus]) -> None:
        if self._on_answer is not None:  # before any waiter runs: the lane sees the whole answer
            self._on_answer(answers)
        missing = {h: w for h, w in batch.items() if h not in answers}
        for handle, waiter in batch.items():
            if handle in answers:
                waiter.status = answers[handle]
                waiter.done.set()
        if missing:
            name = self._provider.name
            self._retry(missing, TransientError("the task was not in the provider's answer", provider=name))

    def _retry(self, batch: Mapping[str, _Waiter], exc: ProviderError) -> None:
        floor = self._provider.min_poll_interval
        reported = False
        for handle, waiter in batch.items():
            if waiter.retries is None:
                waiter.retries = Retries(self._policy, self._clock, self._rng, Step.POLL, self._provider.name)
            retry = waiter.retries.after(exc, floor=floor, tasks=len(batch))
            if retry is None:
                retry = self._wait_out(waiter, exc, len(batch))
            if retry is None:
                self._fail({handle: waiter}, self._gave_up(waiter, exc))
                continue
            if not reported and self._on_retry is not None:
                self._on_retry(retry)  # one report for the batch: it was one request
                reported = True
            waiter.due = waiter.ride_from = self._clock.now() + retry.delay
            self._waiting[handle] = waiter
            self._wake_if_earlier(waiter.due)

    def _wait_out(self, waiter: _Waiter, exc: ProviderError, tasks: int) -> Retry | None:
        """A Retry-After beyond the policy's total time: waited out as far as the take may wait."""
        wait = exc.retry_after if isinstance(exc, RateLimitedError) else None
        assert waiter.retries is not None
        room = waiter.wait_until - self._clock.now()
        if wait is None or waiter.last_try or room <= 0 or waiter.retries.failures >= self._policy.attempts:
            return None
        waiter.last_try = wait > room
        delay = max(min(wait, room), self._provider.min_poll_interval)
        return Retry(Step.POLL, self._provider.name, waiter.retries.failures, delay, str(exc), tasks)

    def _gave_up(self, waiter: _Waiter, exc: ProviderError) -> TerminalError:
        assert waiter.retries is not None
        retries = waiter.retries
        why = f"gave up after {retries.failures} polls in a row failed ({retries.spent()})"
        if waiter.last_try:
            why += "; the provider's Retry-After lies beyond what the take may wait"
        return PollGaveUpError(f"{why}; last: {exc}", kind=FailureKind.PROVIDER, provider=self._provider.name)

    @staticmethod
    def _fail(batch: Mapping[str, _Waiter], exc: Exception) -> None:
        for waiter in batch.values():
            waiter.error = exc
            waiter.done.set()
