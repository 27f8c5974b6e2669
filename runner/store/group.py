"""Group commit: the store for the event loop, many takes' writes in one transaction.

Why: each commit is an fsync (SQLite) or a round trip (PostgreSQL); a night of 10,000 takes writes
each take several times, and one commit per write would make the journal, not the providers, the
bottleneck. Calls queue up, and whoever finds no commit under way takes them all into one.
Backend-neutral: it runs the store's ``op_*`` calls through :meth:`Store.batch`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread

from runner.store.base import Store
from runner.store.owner import LEASE_S
from runner.store.records import Money, Pending, Record

R = TypeVar("R")
T = TypeVar("T")


class AsyncJournal:
    """The journal for the event loop: calls queue up and are committed together (group commit).

    Whoever finds no commit under way takes every call queued so far into one transaction, run
    in a worker thread — one fsync for all of them — while later callers queue for the next. The
    thread commits what queued meanwhile too (up to :attr:`ROUNDS` transactions) before handing
    back: a reservation that arrives during another take's commit then waits for that commit
    only, not for a trip through the event loop as well. A call's own failure is its alone (each
    runs under a savepoint). A commit that has started is not cancellable: a hard stop waits for
    it, so the journal is always consistent. ``inline`` runs calls on the loop itself, for tests
    whose virtual clock must see every step.
    """

    #: Transactions one trip to the worker thread may commit (its callers wake when it returns).
    ROUNDS = 3

    def __init__(
        self, journal: Store, *, on_row: Callable[[], object] | None = None, inline: bool = False
    ) -> None:
        self.sync = journal
        self._on_row = on_row  # the ledger files' projection, run after a commit that wrote rows
        self._inline = inline
        self._queue: list[Pending] = []
        self._guard = threading.Lock()  # the queue is taken from the worker thread too
        self._flushing = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self.commits = 0  # group commits made (each one fsync), for benchmarks
        self.trips = 0  # trips to the worker thread (each up to ROUNDS commits)

    async def _run(self, op: Callable[[], T], *, rows: bool = False) -> T:
        pending = Pending(op, rows=rows)
        with self._guard:
            self._queue.append(pending)
        try:
            async with self._flushing:
                if not pending.done:
                    await self._commit()
        except anyio.get_cancelled_exc_class():
            with self._guard:
                if not pending.done and pending in self._queue:
                    self._queue.remove(pending)
            raise
        if pending.error is not None:
            raise pending.error
        return cast(T, pending.result)

    def _take(self) -> list[Pending]:
        with self._guard:
            batch, self._queue = self._queue, []
        return batch

    def _commit_queued(self) -> None:
        """Every call queued so far, one transaction per round; a failed commit fails its calls."""
        for _ in range(self.ROUNDS):
            batch = self._take()
            if not batch:
                return
            self.commits += 1
            try:
                self.sync.batch(batch)
                if self._on_row is not None and any(p.rows for p in batch):
                    self._on_row()
            except Exception as exc:
                for call in batch:
                    call.done = True
                    call.error = call.error or exc

    async def _commit(self) -> None:
        self.trips += 1
        if self._inline:
            self._commit_queued()
            await anyio.lowlevel.checkpoint()
        else:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._commit_queued)

    async def reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None:
        return await self._run(partial(self.sync.op_reserve, key, attempt, estimate, check, then))

    async def update(self, key: str, **fields: Any) -> None:
        await self._run(partial(self.sync.op_update, key, fields))

    async def release(self, key: str) -> None:
        await self._run(partial(self.sync.op_release, key))

    async def reclaim(self, key: str) -> Record:
        return await anyio.to_thread.run_sync(self.sync.reclaim, key, limiter=self._limiter)

    async def charge(self, key: str, row: Mapping[str, Any], *, state: str, **fields: Any) -> dict[str, Any]:
        """End an attempt (see :meth:`Store.charge`); the ledger files follow the commit."""
        return await self._run(partial(self.sync.op_charge, key, row, state, fields), rows=True)

    # --- leases (team mode; runner.engine.claims) -------------------------------------------

    async def lease(self, key: str, run: str, seconds: float) -> Record | None:
        return await self._run(partial(self.sync.op_lease, key, run, seconds))

    async def renew(self, run: str, seconds: float) -> int:
        return await anyio.to_thread.run_sync(self.sync.renew, run, seconds, limiter=self._limiter)

    async def lapsed(self, *, besides: str | None = None, seconds: float = LEASE_S) -> list[Record]:
        return await anyio.to_thread.run_sync(
            partial(self.sync.lapsed, besides=besides, seconds=seconds), limiter=self._limiter
        )

    async def unended(self, besides: Collection[str] = ()) -> int:
        return await anyio.to_thread.run_sync(self.sync.unended, besides, limiter=self._limiter)

    async def ended_badly(self) -> set[str]:
        """The keys of takes that ended failed or cancelled (team mode: by any run)."""
        found = await anyio.to_thread.run_sync(
            self.sync.records, "failed", "cancelled", limiter=self._limiter
        )
        return set(found)
