"""Which run works on a take when many runs of one manifest share a store (team mode, DESIGN §7).

Why a seam of its own: the take's life does not change in team mode — only *whether this run may
live it*. Before a take starts, this run leases it in the store (one run at a time, until the lease
lapses by the database's clock); the lease is renewed while the run lives, and freed when it ends
(``disown``), so a run killed at 3 a.m. loses its takes after :data:`LEASE_S` and any live run of
the manifest picks them up by task id, exactly as a rerun does. A run with nothing left to lease
stays, watching for leases that lapse, until every take of the manifest has ended — so its exit
code speaks for the manifest, not for the takes it happened to get.

With the SQLite journal there is no ``Claims`` at all: one run, every take its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import anyio

from runner.engine.flight import Job
from runner.engine.rejoin import Policy, rejoin
from runner.store.group import AsyncJournal
from runner.store.owner import LEASE_S
from runner.store.records import Record


class Claims:
    """One run's leases on one store: take before starting, renew while alive, pick up what lapses.

    ``_mine`` are the takes this run leased and works on now, ``_passed`` those it has had its go
    at (ended here, or left for a later run) or will not work on (an earlier manifest's): neither
    is leased again, so a take the watcher finds lapsed while this run still holds it in a queue is
    never worked twice.
    """

    def __init__(self, journal: AsyncJournal, run: str, *, lease_s: float = LEASE_S) -> None:
        self._journal = journal
        self._run = run
        self.lease_s = lease_s
        self._mine: set[str] = set()
        self._passed: set[str] = set()
        self._handed: set[str] = set()  # found lapsed and queued here, not yet leased

    async def fresh(self, job: Job, policy: Policy) -> Job | None:
        """``job`` leased to this run and rebuilt from the store's record now (another run may have
        moved it on); None when another live run holds it, it has ended meanwhile, or this run
        has it already."""
        key = job.take.key
        self._handed.discard(key)
        if key in self._mine or key in self._passed:
            return None
        self._mine.add(key)  # before the await: a second queue holding the take must not lease it too
        record = await self._journal.lease(key, self._run, self.lease_s)
        if record is None:
            self._mine.discard(key)
            return None
        if record == job.record:
            return job
        found = rejoin([job.take], {record.key: record}, policy)
        jobs = [j for queue in found.queues.values() for j in queue]
        if not jobs:
            self.pass_over([key])
        return jobs[0] if jobs else None

    def pass_over(self, keys: Iterable[str]) -> None:
        """Takes this run is done with or will not work on: waiting for them would never end."""
        keys = set(keys)
        self._mine -= keys
        self._passed |= keys

    async def keep(self) -> None:
        """Renew this run's leases every third of the lease time, for as long as the run goes."""
        while True:
            await anyio.sleep(self.lease_s / 3)  # the database's clock judges, so real time here
            with contextlib.suppress(Exception):  # a missed renewal is tried again; a lapse is safe
                await self._journal.renew(self._run, self.lease_s)

    async def taken_over(self) -> list[Record]:
        """Wait for takes another run leased and let lapse (it died) while this run still feeds
        its own: they are rejoined at once, not after this run's queue."""
        while True:
            lapsed = await self._journal.lapsed(besides=self._run, seconds=self.lease_s)
            seen = self._mine | self._passed | self._handed
            found = [r for r in lapsed if r.key not in seen]
            if found:
                self._handed.update(r.key for r in found)
                return found
            await anyio.sleep(self._beat)

    async def left(self) -> list[Record]:
        """Wait for takes no live run holds (a dead run's); [] once every take has ended."""
        while True:
            seen = self._passed | self._mine | self._handed
            lapsed = [r for r in await self._journal.lapsed(seconds=self.lease_s) if r.key not in seen]
            if lapsed:
                return lapsed
            if not await self._journal.unended(self._passed):
                return []
            await anyio.sleep(self._beat)

    @property
    def _beat(self) -> float:
        """How often the store is asked: a lapse is seen within this of the lease's end."""
        return min(1.0, self.lease_s / 3)
