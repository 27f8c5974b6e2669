"""Batch cadences compared without noise: the real BatchCadence, Flights and PollSchedule.

    .venv/bin/python benchmarks/batch_offline.py                       # today's PollPolicy
    .venv/bin/python benchmarks/batch_offline.py batch_cost=0.03 --period 2.3

A Runware-like lane (one request polls every task in flight, 1 s minimum between a task's
polls, 50 ms a request) runs 24 fixed 10 s takes on 8 slots, and 200 takes of U(40, 90) s on 8
and 20 slots (six seeds), each next take starting the moment a slot frees. It reports span ÷
list-schedule bound, requests per take and mean notice lag (s). ``--period P`` adds the
reference every cadence is up against: a batch every P s once any task is past its group's 8 %
quantile (before issue 21 it was 2.3 s, with a cold 1, 2, 4, 8 s schedule per task).
``perf.py`` measures the whole runner over HTTP; this isolates what the cadence costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.engine.cadence import BatchCadence, CadenceRules, Flights, Watch
from runner.engine.gentimes import GenerationTimes
from runner.engine.polling import PollPolicy, PollSchedule

GROUP = ("runware", "gen4_turbo", 6)
RTT = 0.05


class _Clock:
    t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # never slept on: the loop below moves time
        self.t += seconds


def bound(gens: list[float], slots: int) -> float:
    free = [0.0] * slots
    for gen in gens:
        heapq.heappush(free, heapq.heappop(free) + gen)
    return max(free)


def _fixed_period(times: GenerationTimes, period: float) -> Callable[[float], float]:
    """Before issue 21: per task, cold 1, 2, 4, 8 s; learned, its 8 % quantile, then every period."""
    cold = [0]

    def delay(elapsed: float) -> float:
        learned = times.learned(GROUP)
        if learned is None:
            cold[0] += 1
            return min(8.0, 2.0 ** (cold[0] - 1))
        return max(period, learned.quantile(0.08) - elapsed)

    return delay


def _cadenced(policy: PollPolicy, times: GenerationTimes, cadence: BatchCadence) -> Callable[[float], float]:
    schedule = PollSchedule(
        policy, lambda: times.learned(GROUP), 1.0, random.Random(0), cadence=cadence.delay
    )
    return lambda _elapsed: schedule.next_delay()


@dataclass
class _Task:
    index: int
    submitted: float
    watch: Watch
    delay: Callable[[float], float]  # elapsed -> seconds to its next poll
    due: float = 0.0
    pending: float | None = None
    last_poll: float = -math.inf


def run(policy: PollPolicy, slots: int, gens: list[float], period: float | None) -> dict[str, float]:
    clock, times, flights = _Clock(), GenerationTimes(), Flights()
    p = policy
    rules = CadenceRules(
        p.batch_first,
        p.batch_cold_share,
        p.batch_cost,
        p.batch_gap_share,
        p.first_quantile,
        p.tail_share,
        p.floor,
    )
    cadence = BatchCadence(rules, clock, flights, times.learned, times.count, 1.0)
    tasks: list[_Task] = []
    lags: list[float] = []
    requests, last = 0, 0.0

    def start(now: float) -> None:
        watch = Watch(GROUP, now, handle=str(len(lags) + len(tasks)))
        flights.add(watch)
        delay = _fixed_period(times, period) if period else _cadenced(policy, times, cadence)
        task = _Task(started[0], now, watch, delay)
        task.due = now + max(1.0, delay(0.0))
        tasks.append(task)
        started[0] += 1

    started = [0]
    for _ in range(min(slots, len(gens))):
        start(0.0)
    while tasks:
        now = min(t.due for t in tasks)
        requests += 1
        clock.t = now + RTT
        cadence.answered({})  # as the poller does, before any task of the answer runs on
        riders = [t for t in tasks if now - t.last_poll >= 1.0 or t.due <= now]
        ended = [t for t in riders if now - t.submitted >= gens[t.index]]
        for t in ended:
            tasks.remove(t)
            flights.discard(t.watch)
            lower = 0.0 if t.pending is None else t.pending - t.submitted
            times.record(GROUP, lower, now - t.submitted)
            lags.append(now - t.submitted - gens[t.index])
            last = max(last, clock.t)
        for t in riders:
            t.last_poll = now
            if t not in ended:
                t.pending = now
                t.due = clock.t + max(1.0, t.delay(now - t.submitted))
        for _ in ended:
            if started[0] < len(gens):
                start(clock.t)
    return {"span": last / bound(gens, slots), "req": requests / len(gens), "lag": statistics.mean(lags)}


def _uniform(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(40.0, 90.0) for _ in range(200)]


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    args.add_argument("changes", nargs="?", default="", help="name=value,… over PollPolicy's defaults")
    args.add_argument("--period", type=float, help="also the fixed-period reference, P s")
    ns = args.parse_args(argv)
    changes = dict(item.split("=", 1) for item in ns.changes.split(",") if item)
    policy = dataclasses.replace(PollPolicy(), **{k: float(v) for k, v in changes.items()})
    for label, period in [("cadence", None)] + ([(f"every {ns.period} s", ns.period)] if ns.period else []):
        fixed = run(policy, 8, [10.0] * 24, period)
        print(f"{label:14s} fixed 10 s C= 8  span/bound {fixed['span']:.3f}  req/take {fixed['req']:.2f}")
        for slots in (8, 20):
            runs = [run(policy, slots, _uniform(seed), period) for seed in range(1, 7)]
            mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
            print(
                f"{label:14s} U(40,90) C={slots:2d}  span/bound {mean['span']:.3f}  "
                f"req/take {mean['req']:.2f}  lag {mean['lag']:.2f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
