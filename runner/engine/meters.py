"""Small limit objects that compose (aiometer's lesson): provider slots and a request rate.

* :class:`AdaptiveSlots` — tasks in flight at one provider. Held from submit until the task is
  terminal *at the provider* (a download does not hold one). A 429 shrinks the limit by one; a run
  of clean completions grows it back, never above the configured cap.
* :class:`RateLimiter` — requests per second to one provider, shared by submits and polls, so a
  burst of polls cannot starve submits or trip the provider's own rate limit.

Both wait on the run's :class:`~runner.clock.Clock`, so tests can scale time.
"""

from __future__ import annotations

import anyio

from runner.clock import Clock


class AdaptiveSlots:
    """A counting limit whose size adapts to the provider's pushback."""

    def __init__(self, cap: int, *, regrow_after: int = 3) -> None:
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.cap = cap
        self.limit = cap
        self.in_use = 0
        self.high_water = 0
        self._regrow_after = regrow_after
        self._clean = 0
        self._changed = anyio.Condition()

    async def acquire(self) -> None:
        async with self._changed:
            while self.in_use >= self.limit:
                await self._changed.wait()
            self.in_use += 1
            self.high_water = max(self.high_water, self.in_use)

    async def release(self, *, clean: bool = True) -> None:
        """Give a slot back; ``clean`` completions count towards growing the limit again."""
        async with self._changed:
            self.in_use -= 1
            if clean and self.limit < self.cap:
                self._clean += 1
                if self._clean >= self._regrow_after:
                    self._clean = 0
                    self.limit += 1
            self._changed.notify_all()

    async def shrink(self) -> None:
        """The provider said 429: run one fewer task at once (never fewer than one)."""
        async with self._changed:
            self.limit = max(1, min(self.limit, self.in_use) - 1)
            self._clean = 0


class RateLimiter:
    """Token bucket: at most ``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, clock: Clock, *, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        self._next_free = clock.now() - self._interval * (burst - 1)  # a full bucket to start
        self._lock = anyio.Lock()

    async def wait(self) -> None:
        """Return when one more request may go out."""
        async with self._lock:
            now = self._clock.now()
            earliest = now - self._interval * (self._burst - 1)
            self._next_free = max(self._next_free, earliest)
            delay = self._next_free - now
            self._next_free += self._interval
        if delay > 0:
            await self._clock.sleep(delay)
