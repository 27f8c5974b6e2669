"""What a lane knows of its tasks in flight together: the batch cadence, and a wave's news.

A poll schedule of one task (:class:`~runner.engine.polling.PollSchedule`) sees only that task. Two
decisions need all of a lane's tasks at once, so the lane keeps them in :class:`Flights`:

* **The batch cadence** (Runware: one request polls every task in flight). A request costs the
  same whatever rides in it, so when it goes out is a question about the whole flight, not about
  any one task: :class:`BatchCadence` picks the next batch from the soonest likely ends among all
  tasks in flight. Of the tasks of a learned group, each adds its hazard (of takes still running
  at its elapsed time, the share that ends per second) from its first quantile on; the next
  batch goes when the lateness expected to pile up meanwhile, summed over the flight, is worth a
  request: ``∫ Λ(s) (g − s) ds = n × batch_cost`` for n learned tasks in flight, which is
  ``sqrt(2 × n × batch_cost / Λ)`` for a steady total hazard Λ. The cost counts per task because
  lateness costs a run through its slots (the span grows by about the lateness summed over the
  n in flight, over n): many likely-done tasks are looked at often, a lone one nearly done too,
  and a run's steady state gets about the same period whatever its concurrency (the figures are
  in ``benchmarks/RESULTS.md``). A batch is never further away than
  ``batch_gap_share`` of a likely-done task's elapsed time, nor ``tail_share`` of a task's
  elapsed time once it is slower than anything learned. Before a group is learned its tasks are
  looked at every ``batch_first`` seconds — a batch is cheap — but no more often than
  ``batch_cold_share`` of their elapsed time while nothing of the group has ended yet (a wave of
  long generations does not cost a request a second for a minute); once one has, every
  ``batch_first`` seconds until the group is learned.
* **A wave's news** (per-task providers: AIML, Runway). The first wave of a run starts together,
  before anything is learned; when the first of a group ends, its siblings (same group, started
  within ``sibling_share`` of that generation time of it) are probably about done too, so the
  lane has them polled as soon as the provider allows instead of at their next cold poll.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from runner.clock import Clock
from runner.engine.gentimes import Group, Learned
from runner.providers.base import TaskStatus

__all__ = ["BatchCadence", "Flights", "Watch"]


@dataclass(eq=False)
class Watch:
    """One task a lane waits on: its group, when its schedule counts from, and its handle."""

    group: Group
    origin: float  # clock time of its submit (or of the rerun that picked it up)
    handle: str | None = None
    ended: bool = False  # a poll said it is terminal (its take has not moved on yet)


class Flights:
    """A lane's tasks in flight, in the order they were submitted.

    A task counts as in flight until a poll says it ended (:meth:`answered`, called by the poller
    before any task of the answer runs on): a batch's next one is planned by the first task of
    the answer that runs on, and must not count the ones that ended in it.
    """

    def __init__(self) -> None:
        self._live: dict[int, Watch] = {}
        self._by_handle: dict[str, Watch] = {}

    def add(self, watch: Watch) -> None:
        self._live[id(watch)] = watch
        if watch.handle is not None:
            self._by_handle[watch.handle] = watch

    def discard(self, watch: Watch) -> None:
        self._live.pop(id(watch), None)
        if watch.handle is not None and self._by_handle.get(watch.handle) is watch:
            del self._by_handle[watch.handle]

    def answered(self, statuses: Mapping[str, TaskStatus]) -> None:
        for handle, status in statuses.items():
            watch = self._by_handle.get(handle)
            if watch is not None and status.state.terminal:
                watch.ended = True

    def __iter__(self) -> Iterator[Watch]:
        return iter([w for w in self._live.values() if not w.ended])

    def __len__(self) -> int:
        return len(self._live)

    def siblings(self, group: Group, origin: float, window: float) -> list[Watch]:
        """Tasks of ``group`` started within ``window`` seconds of ``origin``: one wave."""
        return [w for w in self if w.group == group and abs(w.origin - origin) <= window]


@dataclass(frozen=True)
class CadenceRules:
    """The knobs :class:`BatchCadence` reads (a subset of :class:`~runner.engine.polling.PollPolicy`)."""

    batch_first: float
    batch_cold_share: float
    batch_cost: float
    batch_gap_share: float
    first_quantile: float
    tail_share: float
    floor: float


class BatchCadence:
    """When the next batched poll of a lane goes out, planned once per batch for all its tasks."""

    step = 0.25  # seconds: the resolution the pile-up of lateness is summed at
    horizon = 3600.0  # seconds: never plan further ahead than this

    def __init__(
        self,
        rules: CadenceRules,
        clock: Clock,
        flights: Flights,
        learned: Callable[[Group], Learned | None],
        ended: Callable[[Group], int],
        min_interval: float,
    ) -> None:
        self._rules = rules
        self._clock = clock
        self._flights = flights
        self._learned = learned
        self._ended = ended
        self._min = min_interval
        self._planned = -math.inf
        self._answered_at = -math.inf

    def answered(self, statuses: Mapping[str, TaskStatus]) -> None:
        """A batch's answer is in (the poller calls this before any of its tasks runs on)."""
        self._answered_at = self._clock.now()
        self._flights.answered(statuses)

    def delay(self, polled: bool) -> float:
        """Seconds until the next batch for a task that was just ``polled``, or that just joined.

        The first task of an answer to run on plans the next batch; the rest of the answer rides
        it. A task that joins while a batch is out waits for the batch its answer's tasks will
        plan (it rides that one, which comes sooner): a plan of its own, earlier than theirs can
        be (each waits the provider's minimum after its last poll), would split the flight into
        two batches in turn.
        """
        now = self._clock.now()
        out = self._answered_at < self._planned <= now  # the planned batch went, no answer yet
        if not polled and out:
            return self._plan(now) + self._min
        if self._planned <= now:
            self._planned = now + self._plan(now)
        else:  # a cold newcomer may want it sooner; a task just polled cannot ride it sooner
            self._planned = min(self._planned, now + self._cold_gap(now))
            if polled:
                self._planned = max(self._planned, now + self._min)
        return max(self._planned - now, 0.0)

    def _plan(self, now: float) -> float:
        bound = self._cold_gap(now)
        rates: list[tuple[float, Learned, float]] = []  # (elapsed, learned, first quantile)
        for watch in self._flights:
            learned = self._learned(watch.group)
            if learned is None:
                continue
            elapsed = now - watch.origin
            first = learned.quantile(self._rules.first_quantile)
            start = max(first, elapsed)  # no later than a gap past its first quantile
            bound = min(bound, start - elapsed + self._bound(learned, start))
            rates.append((elapsed, learned, first))
        gap = self._gap_by_hazard(rates, min(bound, self.horizon))
        return max(gap, self._rules.floor, self._min)

    def _bound(self, learned: Learned, elapsed: float) -> float:
        """The longest gap one likely-done task allows: a share of its elapsed time."""
        if learned.hazard(elapsed) is None:  # slower than anything learned
            return self._rules.tail_share * max(elapsed, learned.median())
        return self._rules.batch_gap_share * elapsed

    def _cold_gap(self, now: float) -> float:
        """The gap the flight's unlearned tasks allow (infinite when there are none)."""
        gap = math.inf
        for watch in self._flights:
            if self._learned(watch.group) is not None:
                continue
            if self._ended(watch.group):  # a sibling ended: the others are about done too
                return self._rules.batch_first
            share = self._rules.batch_cold_share * (now - watch.origin)
            gap = min(gap, max(self._rules.batch_first, share))
        return gap

    def _gap_by_hazard(self, rates: list[tuple[float, Learned, float]], bound: float) -> float:
        """The gap g where the lateness piling up, ∫ Λ(s) (g − s) ds, reaches n × ``batch_cost``."""
        if not rates:
            return bound
        cost = self._rules.batch_cost * len(rates)
        total = weighted = 0.0  # ∫ Λ ds and ∫ Λ s ds so far
        g = max(0.0, min(first - elapsed for elapsed, _, first in rates))  # nothing piles up before
        while g < bound:
            rate = sum(self._rate(learned, elapsed + g, first) for elapsed, learned, first in rates)
            total += rate * self.step
            weighted += rate * self.step * (g + self.step / 2)
            g += self.step
            if g * total - weighted >= cost:
                return g
        return bound

    @staticmethod
    def _rate(learned: Learned, elapsed: float, first: float) -> float:
        if elapsed < first:
            return 0.0
        hazard = learned.hazard(elapsed)
        return 0.0 if hazard is None else hazard
