"""One retry rule for every request the runner repeats: submits, polls and downloads.

The caller classifies a failure — it alone knows whether resending is safe or a URL expired — and
asks :class:`Retries` whether and when to try again. The answer follows one
:class:`RetryPolicy`: exponential backoff with jitter, the server's Retry-After when that is
longer, never sooner than a floor (a provider's minimum poll interval), and two stops — a number
of failures in a row *and* a total time since the first of them, so a provider that fails slowly
is not retried for hours. Waits are on the run's :class:`~runner.clock.Clock`, so a test's
virtual clock or ``--clock-scale`` scales them like everything else (stamina's test-mode lesson,
without its wall-clock sleeps). Each retry is described by a typed :class:`Retry`, which the
engine emits as an event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from runner.clock import Clock
from runner.errors import RateLimitedError


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full-range jitter of ±``jitter`` around each step."""

    base: float = 1.0  # seconds before the first retry
    factor: float = 2.0  # each later wait this many times the one before...
    cap: float = 60.0  # ...up to this
    jitter: float = 0.25  # ± share of each step, so retries of many takes do not stampede

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); Retry-After wins if longer."""
        step = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        jittered = step * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """When one request stops being retried: ``attempts`` failures in a row, or ``total`` seconds
    since the first of them (a retry that would start later is not made)."""

    attempts: int
    total: float
    backoff: Backoff = field(default_factory=Backoff)


class Step(StrEnum):
    """What is being retried."""

    SUBMIT = "submit"
    POLL = "poll"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class Retry:
    """One retry about to be made: of what, after how many failures, how long until it, and why."""

    step: Step
    provider: str
    failures: int  # in a row, this one included
    delay: float  # seconds (run clock) until the next try
    error: str
    tasks: int = 1  # a batched poll retries every task it covered

    def __str__(self) -> str:
        what = f"{self.step.value} of {self.tasks} tasks" if self.tasks > 1 else self.step.value
        return f"{what} failed ({self.failures}), retrying in {self.delay:.1f}s: {self.error}"


class Retries:
    """The failures in a row of one request, and the policy's answer to each.

    Made when the request is first tried; :meth:`after` is called on each failure and returns the
    :class:`Retry` to wait out, or None when the policy is spent. :meth:`reset` after a success
    (a poller keeps one per task across many polls).
    """

    def __init__(
        self, policy: RetryPolicy, clock: Clock, rng: random.Random, step: Step, provider: str
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._step = step
        self._provider = provider
        self.failures = 0
        self._since: float | None = None

    def after(
        self, error: BaseException, *, retry_after: float | None = None, floor: float = 0.0, tasks: int = 1
    ) -> Retry | None:
        """A failure happened: the retry to make (and when), or None to give up.

        ``retry_after`` defaults to what a :class:`~runner.errors.RateLimitedError` carries."""
        if retry_after is None and isinstance(error, RateLimitedError):
            retry_after = error.retry_after
        now = self._clock.now()
        if self._since is None:
            self._since = now
        self.failures += 1
        if self.failures >= self._policy.attempts:
            return None
        delay = max(self._policy.backoff.delay(self.failures, self._rng, retry_after), floor)
        if now + delay - self._since > self._policy.total:
            return None
        return Retry(self._step, self._provider, self.failures, delay, str(error), tasks)

    def spent(self) -> str:
        """Why the retries stopped, for the failure message."""
        elapsed = self._clock.now() - (self._since if self._since is not None else self._clock.now())
        return f"{self._step.value} failed {self.failures} times in {elapsed:.0f}s"

    def reset(self) -> None:
        self.failures = 0
        self._since = None
