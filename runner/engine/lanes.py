"""A lane: everything the engine keeps per provider — its adapter, slots, rate, poller, learning.

Limits are separate objects (DESIGN §5): slots are held from submit until the task is terminal
at the provider, the rate limiter is shared by submits and polls, and the download limit is the
engine's, not the lane's, because a download does not hold a provider slot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from runner.clock import Clock
from runner.engine.cadence import BatchCadence, CadenceRules, Flights, Watch
from runner.engine.meters import AdaptiveSlots, RateLimiter
from runner.engine.polling import BatchPoller, GenerationTimes, Group, Hints, PollPolicy, PollSchedule
from runner.engine.retrying import Retry, RetryPolicy
from runner.engine.shared import Account, SharedSlots
from runner.manifest.takes import Take
from runner.providers.base import Provider

#: A poll is retried for up to 40 failures in a row or an hour, whichever comes first: a provider
#: down that long has lost the task or the run should not wait for it.
POLL_RETRY = RetryPolicy(attempts=40, total=3600.0)


@dataclass(frozen=True)
class LaneOptions:
    """How the runner treats one provider; built once by ``runner.cli.run`` from the manifest's
    settings, the provider's limits and the CLI."""

    concurrency: int  # tasks in flight at once (slots; fewer after 429s, see AdaptiveSlots)
    requests_per_second: float = 5.0  # submits and polls together, on average...
    burst: int = 20  # ...with up to this many back to back (a run's first wave goes out at once)
    poll: PollPolicy = field(default_factory=PollPolicy)  # when to poll a task
    poll_retry: RetryPolicy = POLL_RETRY  # how a failed poll is retried
    #: a batching provider's task rides along any batch due within this many seconds of it —
    #: by default every batch: one more task in a request costs nothing
    coalesce: float = math.inf
    #: team mode: the provider account's slots on the store, held besides this run's own
    shared: Account | None = None


class Lane:
    """One provider's share of the run: its adapter, the slots and rate its requests pass, the
    poller its tasks wait on, the generation times its polls learn from, and whether it has been
    closed to new submissions (``closed_reason``: a bad key, no credits, unreachable, daily cap)."""

    def __init__(
        self,
        provider: Provider,
        options: LaneOptions,
        clock: Clock,
        rng: random.Random,
        on_retry: Callable[[Retry], None] | None = None,
    ) -> None:
        self.provider = provider
        self.name = provider.name
        self.options = options
        self.rng = rng
        own = AdaptiveSlots(options.concurrency)
        self.slots: AdaptiveSlots | SharedSlots = (
            own if options.shared is None else SharedSlots(own, options.shared)
        )
        self.rate = RateLimiter(options.requests_per_second, clock, burst=options.burst)
        self.times = GenerationTimes()
        self.hints = Hints()
        self.flights = Flights()
        self.cadence = self._cadence(clock) if provider.max_poll_batch > 1 else None
        self._started = 0  # schedules made: each starts its cold sequence at its own phase
        self.poller = BatchPoller(
            provider,
            self.rate,
            clock,
            retry=options.poll_retry,
            rng=rng,
            coalesce=options.coalesce,
            on_retry=on_retry,
            on_answer=self.cadence.answered if self.cadence is not None else self.flights.answered,
        )
        self.closed_reason: str | None = None

    def close(self, reason: str) -> None:
        """Stop new submissions to this provider (bad key, out of credits); in-flight tasks go on."""
        if self.closed_reason is None:
            self.closed_reason = reason

    def _cadence(self, clock: Clock) -> BatchCadence:
        p = self.options.poll
        rules = CadenceRules(
            p.batch_first,
            p.batch_cold_share,
            p.batch_cost,
            p.batch_gap_share,
            p.first_quantile,
            p.tail_share,
            p.floor,
        )
        return BatchCadence(
            rules, clock, self.flights, self.times.learned, self.times.count, self.provider.min_poll_interval
        )

    def schedule_for(self, take: Take) -> PollSchedule:
        group = group_of(take)
        self._started += 1
        return PollSchedule(
            self.options.poll,
            lambda: self.times.learned(group),
            self.provider.min_poll_interval,
            self.rng,
            cadence=self.cadence.delay if self.cadence is not None else None,
            hints=self.hints,
            phase=(self._started * GOLDEN) % 1.0,
        )

    @contextmanager
    def watching(self, take: Take, origin: float, handle: str | None) -> Iterator[PollSchedule]:
        """A poll schedule for a task in flight, counted among the lane's flights while it waits."""
        watch = Watch(group_of(take), origin, handle)
        self.flights.add(watch)
        try:
            yield self.schedule_for(take)
        finally:
            self.flights.discard(watch)

    def ended(self, take: Take, origin: float, lower: float, upper: float) -> None:
        """A task finished ``lower``–``upper`` s after ``origin``: learned; and where it is the
        first of its group to end and the provider polls per task, news for its wave."""
        group = group_of(take)
        news = self.times.count(group) == 0
        self.times.record(group, lower, upper)
        if not news or self.cadence is not None:
            return
        for sibling in self.flights.siblings(group, origin, self.options.poll.sibling_share * upper):
            if sibling.handle is not None:
                self.poller.hurry(sibling.handle)


#: Successive phases ``k × GOLDEN mod 1`` spread evenly over [0, 1) for any number of tasks.
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def group_of(take: Take) -> Group:
    return (take.provider, take.model, take.duration)
