"""Deterministic dice and the fault decisions made with them.

Why hashing instead of ``random.Random``: a shared generator hands out numbers in arrival order,
so two runs whose requests interleave differently would see different faults. Here every roll is
a hash of (seed, what is being decided, a stable key), where the key names the thing — a take, a
task, a file — plus how many times that same thing has been tried. The same client behaviour
meets the same faults under the same seed, however its requests interleave.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from runner.simulator.config import FAULT_NAMES, Faults

ErrorKind = Literal["5xx", "429", "reset"]


class Dice:
    """Seeded, stateless randomness: the same arguments always give the same answer."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def _digest(self, parts: tuple[object, ...]) -> bytes:
        text = "\x1f".join([str(self._seed), *(str(p) for p in parts)])
        return hashlib.sha256(text.encode()).digest()

    def uniform(self, *parts: object) -> float:
        """A float in [0, 1)."""
        return int.from_bytes(self._digest(parts)[:8], "big") / 2.0**64

    def chance(self, probability: float, *parts: object) -> bool:
        return probability > 0.0 and self.uniform(*parts) < probability

    def integer(self, low: int, high: int, *parts: object) -> int:
        """An integer in [low, high]."""
        return low + int.from_bytes(self._digest(parts)[:8], "big") % (high - low + 1)

    def uuid4(self, *parts: object) -> str:
        """A version-4-shaped UUID string, as providers hand out."""
        return str(uuid.UUID(bytes=self._digest(parts)[:16], version=4))

    def token(self, *parts: object) -> str:
        return self._digest(parts)[:12].hex()


@dataclass(frozen=True)
class Decision:
    """What happens to one request: maybe a delay, maybe an error instead of the answer."""

    delay: float = 0.0  # simulated seconds before answering
    error: ErrorKind | None = None
    status: int = 200
    retry_after: int | None = None  # simulated seconds, only with a 429
    attempt: int = 0  # how many times the same key was tried before


class FaultInjector:
    """Rolls the configured faults for requests, tasks and downloads, and counts what it injected."""

    def __init__(self, faults: Faults, dice: Dice) -> None:
        self.faults = faults
        self._dice = dice
        self._attempts: Counter[str] = Counter()
        self.injected: Counter[str] = Counter({name: 0 for name in FAULT_NAMES})

    def attempt(self, key: str) -> int:
        """How many times ``key`` was tried before (0 the first time); counts this try."""
        n = self._attempts[key]
        self._attempts[key] = n + 1
        return n

    def _hit(self, name: str, probability: float, key: str, n: int) -> bool:
        if self._dice.chance(probability, name, key, n):
            self.injected[name] += 1
            return True
        return False

    def request(self, key: str, *, codes_5xx: tuple[int, ...], can_reset: bool) -> Decision:
        """The fate of one request about ``key`` (a take, a task, a file, a batch)."""
        f = self.faults
        n = self.attempt(key)
        delay = f.slow_seconds if self._hit("slow", f.slow, key, n) else 0.0
        if self._hit("http_5xx", f.http_5xx, key, n):
            code = codes_5xx[self._dice.integer(0, len(codes_5xx) - 1, "5xx-code", key, n)]
            return Decision(delay=delay, error="5xx", status=code, attempt=n)
        if self._hit("http_429", f.http_429, key, n):
            retry_after = None
            if self._dice.chance(f.retry_after_share, "retry-after", key, n):
                retry_after = self._dice.integer(1, 5, "retry-after-s", key, n)
            return Decision(delay=delay, error="429", status=429, retry_after=retry_after, attempt=n)
        if can_reset and self._hit("reset", f.reset, key, n):
            return Decision(delay=delay, error="reset", status=0, attempt=n)
        return Decision(delay=delay, attempt=n)

    def lost_answer(self, key: str) -> bool:
        """Whether the answer to a registered submit about ``key`` is lost."""
        return self._hit("submit_lost_answer", self.faults.submit_lost_answer, key, 0)

    def truncate(self, key: str, n: int) -> bool:
        return self._hit("truncate", self.faults.truncate, key, n)

    def expire_first_url(self, task_key: str) -> bool:
        return self._hit("expire", self.faults.expire, task_key, 0)

    def moderation(self, task_key: str, *, triggered: bool) -> bool:
        """Whether a task fails by moderation: the prompt trigger, or the configured odds."""
        if triggered:
            self.injected["moderation"] += 1
            return True
        return self._hit("moderation", self.faults.moderation, task_key, 0)
