"""Slots that belong to a provider account, shared by every run on a team store (DESIGN §7).

Composes like aiometer's limits: this run's own :class:`~runner.engine.meters.AdaptiveSlots`
(which still shrinks on a 429) and under it the account's slot in the store. A take holds both
from its submit until its task is terminal; the account's is waited for where a freed one wakes
the waiter at once (the store's notification), in a worker thread so the loop never blocks.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import anyio
import anyio.to_thread

from runner.engine.meters import AdaptiveSlots


class Account(Protocol):
    """The store's side of an account's slots (``runner.store.pgslots.AccountSlots``)."""

    account: str

    def try_take(self, others_waiting: int = 0) -> int | None: ...
    def give_back(self, hold: int) -> None: ...
    def wait(self, timeout: float) -> None: ...


class SharedSlots:
    """This run's slots, each also holding one of the account's (see the module docstring)."""

    #: How long one wait for a freed slot lasts before the store is asked again (a missed
    #: notification costs at most this much).
    WAIT_S = 1.0

    def __init__(self, local: AdaptiveSlots, account: Account) -> None:
        self.local = local
        self._account = account
        self._holds: deque[int] = deque()
        self._limiter = anyio.CapacityLimiter(1)
        self._wanting = 0  # takes of this run waiting for one of the account's slots

    @property
    def cap(self) -> int:
        return self.local.cap

    @property
    def limit(self) -> int:
        return self.local.limit

    @property
    def in_use(self) -> int:
        return self.local.in_use

    @property
    def high_water(self) -> int:
        return self.local.high_water

    async def acquire(self) -> None:
        await self.local.acquire()
        self._wanting += 1
        try:
            await self._take()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.local.release(clean=False)
            raise
        finally:
            self._wanting -= 1

    async def _take(self) -> None:
        """One of the account's slots, tried again each time one is given back (or each wait);
        the store is told how many more of this run's takes still wait (its fair turn)."""
        while True:
            others = self._wanting - 1
            hold = await anyio.to_thread.run_sync(self._account.try_take, others, limiter=self._limiter)
            if hold is not None:
                self._holds.append(hold)
                return
            await anyio.to_thread.run_sync(self._account.wait, self.WAIT_S, limiter=self._limiter)

    async def release(self, *, clean: bool = True) -> None:
        if self._holds:
            hold = self._holds.popleft()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._account.give_back, hold)
        await self.local.release(clean=clean)

    async def shrink(self) -> None:
        await self.local.shrink()
