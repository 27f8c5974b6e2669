"""When to ask a provider again: backoff, per-task poll schedules, and the batching poller.

Polling must be quick *and* frugal at any time scale — a real clip takes about a minute, the
simulator's a fraction of a second, and nobody tells the runner which. So:

* Before anything is learned for a (provider, model, duration) group, a task is polled on a short
  geometric schedule (``first`` seconds, doubling, capped).
* Once takes of the group have finished, the first poll goes out just before the learned
  generation time and later ones at a short jittered interval.
* Never more often than the provider asks (``min_interval``; Runway: 5 s per task).

:class:`BatchPoller` is the one place polls leave from. Tasks due at about the same time are
coalesced into one request where the provider allows it (Runware takes many getResponse tasks in
one POST), and every request passes the provider's :class:`~runner.meters.RateLimiter`.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from runner.clock import Clock
from runner.errors import FailureKind, ProviderError, RateLimitedError, TerminalError, TransientError
from runner.meters import RateLimiter
from runner.providers.base import Provider, TaskStatus

#: (provider, model, duration): takes in one group should take about as long as each other.
Group = tuple[str, str, int]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full-range jitter of ±``jitter`` around each step."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); Retry-After wins if longer."""
        step = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        jittered = step * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True)
class PollPolicy:
    first: float = 1.0  # first poll of an unlearned group, seconds after submit
    factor: float = 2.0
    cap: float = 10.0  # longest gap of the geometric schedule
    lead: float = 0.9  # learned groups: first poll at lead × expected generation time
    share: float = 0.08  # learned groups: later polls every share × expected time...
    floor: float = 0.5  # ...but never sooner than this
    jitter: float = 0.2


class PollSchedule:
    """Delays between the polls of one task (an iterator with a memory of one step)."""

    def __init__(
        self, policy: PollPolicy, expected: float | None, min_interval: float, rng: random.Random
    ) -> None:
        self._policy = policy
        self._expected = expected
        self._min = min_interval
        self._rng = rng
        self._polls = 0

    def next_delay(self) -> float:
        p = self._policy
        self._polls += 1
        if self._expected is None:
            delay = min(p.cap, p.first * p.factor ** (self._polls - 1))
        elif self._polls == 1:
            delay = p.lead * self._expected
        else:
            step = p.share * self._expected * (1.0 + p.jitter * (2.0 * self._rng.random() - 1.0))
            delay = max(p.floor, step)
        return max(delay, self._min)


class GenerationTimes:
    """What we learned of how long generations take, per (provider, model, duration) group.

    A low quantile of recent observations is used: an observation is the time from submit to the
    poll that saw success, so it overshoots by up to one poll gap; the low end is the honest one.
    """

    def __init__(self, window: int = 20) -> None:
        self._seen: defaultdict[Group, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def record(self, group: Group, seconds: float) -> None:
        self._seen[group].append(seconds)

    def expected(self, group: Group) -> float | None:
        seen = self._seen.get(group)
        if not seen:
            return None
        if len(seen) < 4:
            return min(seen)
        return statistics.quantiles(seen, n=4)[0]


@dataclass
class _Waiter:
    due: float  # poll by then at the latest
    ride_from: float  # may ride along in a batch that goes out anyway from then on
    done: anyio.Event = field(default_factory=anyio.Event)
    status: TaskStatus | None = None
    error: Exception | None = None
    failures: int = 0


class BatchPoller:
    """Polls one provider's tasks when they fall due, many per request where the provider allows.

    A take calls :meth:`status_at` and gets the task's status at (or just after) that time; the
    poller's own loop (:meth:`run`, started once in the engine's task group) does the requests.
    Where the provider batches, a task due within ``coalesce`` seconds rides along with a batch
    that is going out anyway — never before its ``not_before``, and never on a retry.
    Transient errors are retried here with backoff (never sooner than the provider's
    ``min_poll_interval``), so a take only ever sees a status, or a :class:`TerminalError`: a bad
    key, or ``max_failures`` polls in a row that failed or did not mention the task.
    """

    def __init__(
        self,
        provider: Provider,
        rate: RateLimiter,
        clock: Clock,
        *,
        backoff: Backoff,
        rng: random.Random,
        coalesce: float = 1.0,
        max_failures: int = 40,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._provider = provider
        self._rate = rate
        self._clock = clock
        self._backoff = backoff
        self._rng = rng
        self._coalesce = coalesce
        self._max_failures = max_failures
        self._on_retry = on_retry
        self._waiting: dict[str, _Waiter] = {}
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleep_until = float("inf")
        self.requests = 0

    async def status_at(self, handle: str, when: float, *, not_before: float | None = None) -> TaskStatus:
        early = when - self._coalesce if self._provider.max_poll_batch > 1 else when
        waiter = _Waiter(due=when, ride_from=max(early, not_before if not_before is not None else early))
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
            self._fail(batch, exc)
        except TransientError as exc:
            retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
            self._retry(batch, exc, retry_after)
        else:
            self._deliver(batch, answers)

    def _deliver(self, batch: Mapping[str, _Waiter], answers: Mapping[str, TaskStatus]) -> None:
        missing = {h: w for h, w in batch.items() if h not in answers}
        for handle, waiter in batch.items():
            if handle in answers:
                waiter.failures = 0
                waiter.status = answers[handle]
                waiter.done.set()
        if missing:
            name = self._provider.name
            self._retry(
                missing, TransientError("the task was not in the provider's answer", provider=name), None
            )

    def _retry(self, batch: Mapping[str, _Waiter], exc: ProviderError, retry_after: float | None) -> None:
        now = self._clock.now()
        if self._on_retry is not None:
            tasks = f"{len(batch)} tasks" if len(batch) > 1 else "a task"
            self._on_retry(f"poll of {tasks} failed, retrying with backoff: {exc}")
        for handle, waiter in batch.items():
            waiter.failures += 1
            if waiter.failures >= self._max_failures:
                self._fail({handle: waiter}, self._gave_up(waiter, exc))
                continue
            wait = max(
                self._backoff.delay(waiter.failures, self._rng, retry_after), self._provider.min_poll_interval
            )
            waiter.due = waiter.ride_from = now + wait
            self._waiting[handle] = waiter
            self._wake_if_earlier(waiter.due)

    def _gave_up(self, waiter: _Waiter, exc: ProviderError) -> TerminalError:
        return TerminalError(
            f"gave up after {waiter.failures} polls in a row failed; last: {exc}",
            kind=FailureKind.PROVIDER,
            provider=self._provider.name,
        )

    @staticmethod
    def _fail(batch: Mapping[str, _Waiter], exc: Exception) -> None:
        for waiter in batch.values():
            waiter.error = exc
            waiter.done.set()
