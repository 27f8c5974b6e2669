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
from runner.polling import BatchPoller, GenerationTimes, Group, Hints, PollPolicy, PollSchedule
from runner.providers.base import Provider
from runner.retrying import Retry, RetryPolicy
from runner.takes import Take

#: A poll is retried for up to 40 failures in a row or an hour, whichever comes first: a provider
#: down that long has lost the task or the run should not wait for it.
POLL_RETRY = RetryPolicy(attempts=40, total=3600.0)


@dataclass(frozen=True)
class LaneOptions:
    """How the runner treats one provider; built once by ``runner.app`` from the manifest's
    settings, the provider's limits and the CLI."""

    concurrency: int  # tasks in flight at once (slots; fewer after 429s, see AdaptiveSlots)
    requests_per_second: float = 5.0  # submits and polls together, on average...
    burst: int = 20  # ...with up to this many back to back (a run's first wave goes out at once)
    poll: PollPolicy = field(default_factory=PollPolicy)  # when to poll a task
    poll_retry: RetryPolicy = POLL_RETRY  # how a failed poll is retried
    #: a batching provider's task rides along any batch due within this many seconds of it —
    #: by default every batch: one more task in a request costs nothing
    coalesce: float = math.inf


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
        self.slots = AdaptiveSlots(options.concurrency)
        self.rate = RateLimiter(options.requests_per_second, clock, burst=options.burst)
        self.times = GenerationTimes()
        self.hints = Hints()
        self.poller = BatchPoller(
            provider,
            self.rate,
            clock,
            retry=options.poll_retry,
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
