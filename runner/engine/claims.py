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
    """One run's leases on one store: take before starting, renew while alive, pick up what lapses."""

    def __init__(self, journal: AsyncJournal, run: str, *, lease_s: float = LEASE_S) -> None:
        self._journal = journal
        self._run = run
        self.lease_s = lease_s
        self._passed: set[str] = set()  # takes this run will not work on (held, or not its manifest's)

    async def fresh(self, job: Job, policy: Policy) -> Job | None:
        """``job`` leased to this run and rebuilt from the store's record now (another run may have
        moved it on); None when another live run holds it or it has ended meanwhile."""
        record = await self._journal.lease(job.take.key, self._run, self.lease_s)
        if record is None:
            return None
        if record == job.record:
            return job
        found = rejoin([job.take], {record.key: record}, policy)
        jobs = [j for queue in found.queues.values() for j in queue]
        return jobs[0] if jobs else None

    def pass_over(self, keys: Iterable[str]) -> None:
        """Takes this run decided not to work on: waiting for them would never end."""
        self._passed.update(keys)

    async def keep(self) -> None:
        """Renew this run's leases every third of the lease time, for as long as the run goes."""
        while True:
            await anyio.sleep(self.lease_s / 3)  # the database's clock judges, so real time here
            with contextlib.suppress(Exception):  # a missed renewal is tried again; a lapse is safe
                await self._journal.renew(self._run, self.lease_s)

    async def left(self) -> list[Record]:
        """Wait for takes no live run holds (a dead run's); [] once every take has ended."""
        while True:
            lapsed = [r for r in await self._journal.lapsed() if r.key not in self._passed]
            if lapsed:
                return lapsed
            if await self._journal.unended() <= len(self._passed):
                return []
            await anyio.sleep(min(1.0, self.lease_s / 3))
