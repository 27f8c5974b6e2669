"""What the runner has learned of how long generations take, per (provider, model, duration) group.

The runner never sees a generation end; it sees polls. A take that finished lies between the last
poll that saw it unfinished (``lower``, seconds after submit; 0 when none did) and the first poll
that saw it finished (``upper``): its generation time is *interval-censored*. Learning from
``upper`` alone — submit-to-notice — counts the runner's own lateness as generation time, and that
bias feeds on itself: later polls make longer observations make later polls.

So each finished take is placed inside its interval, never at its end:

* at the interval's midpoint: the polls near an end are a few seconds apart, so the midpoint is
  off by at most half a poll gap, in either direction, and the errors cancel over many takes
  (no rounding up to the notice, so nothing to feed on);
* a take already done at its very first poll says only "at most ``upper``", and nothing below the
  first poll is ever seen. It counts a little below that poll (``EARLY_SHARE`` of ``upper``): while
  more takes than planned are done by the first poll, the low quantile the first poll aims at
  sinks, until about the planned share is — the first poll finds the low tail by itself.

:class:`Learned` is the recent window of placed values, sorted, with the two questions the poll
schedule asks of it: a low quantile (when to look first) and the hazard — of the takes still
running at ``t``, the share that ends per second just after ``t`` (how fast to look after that).
Both count the k-th smallest of n values at the k / (n + 1) quantile, where it sits on average.
"""

from __future__ import annotations

import bisect
from collections import defaultdict, deque
from dataclasses import dataclass

#: (provider, model, duration): takes in one group should take about as long as each other.
Group = tuple[str, str, int]

#: A take done at its first poll counts this share of the way to that poll (see the docstring).
EARLY_SHARE = 0.9

#: Fewer finished takes than this, and the group counts as not learned yet.
MIN_LEARNED = 3


@dataclass(frozen=True)
class Learned:
    """Recent generation times of one group, sorted ascending (at least :data:`MIN_LEARNED`)."""

    values: tuple[float, ...]

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, interpolated between neighbouring values.

        The k-th smallest of n values sits, on average, at the k / (n + 1) quantile of what they
        were drawn from, so that is where each value counts (below the first, the first): with
        few values a low quantile is not put above where it belongs (the plain k − 1 / n − 1
        rule puts the 5 % quantile of 20 values at the second smallest, about the 10 % one).
        """
        position = min(max(q * (len(self.values) + 1) - 1.0, 0.0), len(self.values) - 1.0)
        low = int(position)
        high = min(low + 1, len(self.values) - 1)
        return self.values[low] + (position - low) * (self.values[high] - self.values[low])

    def hazard(self, t: float) -> float | None:
        """Ends per second, among takes still running at ``t``, just after ``t``; None past the data.

        Estimated over the next quarter (at least 3) of the values above ``t``: of the share still
        running at ``t``, the part that ends by the last of them (shares as in :meth:`quantile`).
        """
        n = len(self.values)
        above = n - bisect.bisect_right(self.values, t)
        k = max(3, above // 4)
        if above < k:
            return None
        last = n - above + k - 1
        running = 1.0 - self._share_below(t)
        ended = (last + 1) / (n + 1) - (1.0 - running)
        return ended / running / max(self.values[last] - t, 1e-9)

    def _share_below(self, t: float) -> float:
        """The share of takes done by ``t``: each value at k / (n + 1), straight lines between."""
        i = bisect.bisect_right(self.values, t)
        if i == 0:
            return 0.0
        if i == len(self.values):
            return i / (i + 1)
        low, high = self.values[i - 1], self.values[i]
        step = (t - low) / (high - low) if high > low else 0.0
        return (i + step) / (len(self.values) + 1)

    def median(self) -> float:
        return self.quantile(0.5)


class GenerationTimes:
    """Interval-censored generation times per group, a window of the ``window`` most recent."""

    def __init__(self, window: int = 100) -> None:
        self._seen: defaultdict[Group, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._cache: dict[Group, Learned] = {}

    def record(self, group: Group, lower: float, upper: float) -> None:
        """A take of ``group`` finished after ``lower`` and by ``upper`` seconds from its submit."""
        upper = max(upper, 0.0)
        lower = min(max(lower, 0.0), upper)
        seen = self._seen[group]
        seen.append(_place(lower, upper))
        self._cache.pop(group, None)

    def learned(self, group: Group) -> Learned | None:
        """The group's recent generation times, or None while fewer than :data:`MIN_LEARNED`."""
        cached = self._cache.get(group)
        if cached is not None:
            return cached
        seen = self._seen.get(group)
        if seen is None or len(seen) < MIN_LEARNED:
            return None
        learned = self._cache[group] = Learned(tuple(sorted(seen)))
        return learned

    def count(self, group: Group) -> int:
        """How many takes of ``group`` are in the window (0 before the first has ended)."""
        seen = self._seen.get(group)
        return 0 if seen is None else len(seen)

    def expected(self, group: Group) -> float | None:
        """The median learned generation time, or None while the group is not learned."""
        learned = self.learned(group)
        return None if learned is None else learned.median()


def _place(lower: float, upper: float) -> float:
    """Where in [lower, upper] one take is counted to have ended."""
    if lower <= 0.0:
        return EARLY_SHARE * upper
    return (lower + upper) / 2.0
