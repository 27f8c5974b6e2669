"""One clock for every wait the runner makes, so tests can run the world faster.

A real clip takes about a minute; the simulator can make it take 0.6 s. Scaling the runner's own
clock by the same factor keeps every rule in proportion — Runway's 5 s between polls of a task
becomes 0.05 s — without any rule knowing it is being tested (stamina's test-mode lesson).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, in the clock's own (possibly scaled) time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of the clock's time."""
        ...


@dataclass(frozen=True)
class ScaledClock:
    """Wall clock whose seconds last ``scale`` real seconds (1.0 = real time)."""

    scale: float = 1.0

    def now(self) -> float:
        return time.monotonic() / self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) * self.scale)


REAL_TIME = ScaledClock(1.0)
