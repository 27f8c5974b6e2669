"""A lane: everything the engine keeps per provider — its adapter, slots, rate, poller, learning.

Limits are separate objects (DESIGN §5): slots are held from submit until the task is terminal
at the provider, the rate limiter is shared by submits and polls, and the download limit is the
engine's, not the lane's, because a download does not hold a provider slot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.clock import Clock
from runner.meters import AdaptiveSlots, RateLimiter
from runner.polling import Backoff, BatchPoller, GenerationTimes, Group, Hints, PollPolicy, PollSchedule
from runner.providers.base import Provider
from runner.takes import Take


@dataclass(frozen=True)
class LaneOptions:
    concurrency: int
    requests_per_second: float = 5.0
    poll: PollPolicy = field(default_factory=PollPolicy)
    backoff: Backoff = field(default_factory=Backoff)
    #: a batching provider's task rides along any batch due within this many seconds of it —
    #: by default every batch: one more task in a request costs nothing
    coalesce: float = math.inf


class Lane:
    def __init__(
        self,
        provider: Provider,
        options: LaneOptions,
        clock: Clock,
        rng: random.Random,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.provider = provider
        self.name = provider.name
        self.options = options
        self.rng = rng
        self.slots = AdaptiveSlots(options.concurrency)
        self.rate = RateLimiter(options.requests_per_second, clock)
        self.times = GenerationTimes()
        self.hints = Hints()
        self.poller = BatchPoller(
            provider,
            self.rate,
            clock,
            backoff=options.backoff,
            rng=rng,
            coalesce=options.coalesce,
            on_retry=on_retry,
        )
        self.closed_reason: str | None = None

    def close(self, reason: str) -> None:
        """Stop new submissions to this provider (bad key, out of credits); in-flight tasks go on."""
        if self.closed_reason is None:
            self.closed_reason = reason

    def schedule_for(self, take: Take) -> PollSchedule:
        group = group_of(take)
        return PollSchedule(
            self.options.poll,
            lambda: self.times.learned(group),
            self.provider.min_poll_interval,
            self.rng,
            batching=self.provider.max_poll_batch > 1,
            hints=self.hints,
        )


def group_of(take: Take) -> Group:
    return (take.provider, take.model, take.duration)
