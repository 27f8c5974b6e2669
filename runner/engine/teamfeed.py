"""How a run feeds its takes in team mode (DESIGN §7): its own queues, and what other runs leave.

Why apart from the engine: the take's life does not change in team mode, only *which* takes a run
lives. While this run feeds its own queues, a run of the manifest that dies (SIGKILL, power,
network) lets its leases lapse; its takes are taken over here as soon as they do, beside this
run's own, not after them — a dead workstation costs the lease time, not the rest of the night.
Once its own queues are through, the run stays until every take of the manifest has ended, taking
over whatever is left, so its exit code speaks for the whole manifest (:meth:`ended_elsewhere`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc

from runner.engine.claims import Claims
from runner.engine.flight import Job
from runner.manifest.takes import Take
from runner.store.records import Record

Queues = Mapping[str, deque[Job]]


class TeamFeed:
    """One run's feeding of one manifest's takes on a shared store."""

    def __init__(
        self,
        claims: Claims,
        takes: Iterable[Take],
        feed: Callable[[Queues], Coroutine[Any, Any, None]],
        rejoin: Callable[[list[Take], Mapping[str, Record]], dict[str, deque[Job]]],
        stopped: Callable[[], bool],
    ) -> None:
        self._claims = claims
        self._by_key = {take.key: take for take in takes}
        self._feed = feed
        self._rejoin = rejoin
        self._stopped = stopped

    async def run(self, queues: Queues) -> None:
        """This run's queues with lapsed takes taken over beside them, then what is left."""
        async with anyio.create_task_group() as work:
            async with anyio.create_task_group() as watch:
                watch.start_soon(self._take_over, work)
                await self._feed(queues)
                watch.cancel_scope.cancel()
            while not self._stopped():
                left = await self._claims.left()
                if not left:
                    break
                await self._feed(self._adopt(left))

    async def _take_over(self, work: anyio.abc.TaskGroup) -> None:
        while not self._stopped():
            found = await self._claims.taken_over()
            work.start_soon(self._feed, self._adopt(found))

    def _adopt(self, found: Iterable[Record]) -> dict[str, deque[Job]]:
        """The queues that rejoin takes another run left, by task id as a rerun would; those of
        an earlier version of the manifest, or that cannot be rejoined, passed over."""
        found = list(found)
        self._claims.pass_over(r.key for r in found if r.key not in self._by_key)
        mine = {r.key: r for r in found if r.key in self._by_key}
        queues = self._rejoin([self._by_key[key] for key in mine], mine)
        self._claims.pass_over(set(mine) - {job.take.key for queue in queues.values() for job in queue})
        return queues

    def ended_elsewhere(self, bad: set[str], records: Mapping[str, Record], bad_here: set[str]) -> int:
        """How many of the manifest's takes another run failed or cancelled while this one ran
        (``bad``: every take that ended so; ``records``: as this run found them at its start)."""
        earlier = {key for key, r in records.items() if r.state in ("failed", "cancelled")}
        return len(bad & set(self._by_key) - earlier - bad_here)
