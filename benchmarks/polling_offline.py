"""Poll policies compared without noise: the real PollSchedule and GenerationTimes, no network.

    .venv/bin/python benchmarks/polling_offline.py                          # today's PollPolicy
    .venv/bin/python benchmarks/polling_offline.py first_quantile=0.05,cap=5 gap_share=0.09

Each row runs 200 takes on a list schedule of C slots (C = 8 and 20), generation times drawn from
U(40, 90) s, eight seeds, and reports the means of span ÷ list-schedule bound, polls per take and
lag p50/p95 as a share of generation time. Polls answer instantly and the next task starts the
moment a slot frees, so this isolates what the *schedule* costs — ``perf.py`` measures the whole
runner against the simulator over HTTP, where load on the machine moves a row by a few percent.
One-request-per-task providers only (AIML's rules: 1 s minimum between polls; no progress).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.engine.gentimes import GenerationTimes
from runner.engine.polling import Hints, PollPolicy, PollSchedule

GROUP = ("aimlapi", "gen4_turbo", 5)


@dataclass(order=True)
class _Task:
    due: float
    index: int
    submitted: float = field(compare=False)
    schedule: PollSchedule = field(compare=False)
    pending: float | None = field(default=None, compare=False)


def list_schedule_bound(gens: list[float], slots: int) -> float:
    free = [0.0] * slots
    for gen in gens:
        heapq.heappush(free, heapq.heappop(free) + gen)
    return max(free)


def run(policy: PollPolicy, slots: int, takes: int, seed: int, min_interval: float = 1.0) -> dict[str, float]:
    """One run: every take polled by its own schedule until a poll finds it done."""
    gens = _gens(seed, takes)
    times, rng = GenerationTimes(), random.Random(seed + 1000)
    due: list[_Task] = []
    started = polls = 0
    lags: list[float] = []
    last = 0.0

    def start(now: float) -> None:
        nonlocal started
        schedule = PollSchedule(policy, lambda: times.learned(GROUP), min_interval, rng, hints=Hints())
        heapq.heappush(due, _Task(now + schedule.next_delay(), started, now, schedule))
        started += 1

    for _ in range(min(slots, takes)):
        start(0.0)
    while due:
        task = heapq.heappop(due)
        polls += 1
        elapsed = task.due - task.submitted
        task.schedule.observe(elapsed)
        if elapsed < gens[task.index]:
            task.pending = task.due
            task.due += task.schedule.next_delay()
            heapq.heappush(due, task)
            continue
        lower = 0.0 if task.pending is None else task.pending - task.submitted
        times.record(GROUP, lower, elapsed)
        lags.append((elapsed - gens[task.index]) / gens[task.index])
        last = max(last, task.due)
        if started < takes:
            start(task.due)
    lags.sort()
    return {
        "span": last / list_schedule_bound(gens, slots),
        "polls": polls / takes,
        "p50": lags[len(lags) // 2],
        "p95": lags[int(0.95 * len(lags))],
    }


def _gens(seed: int, takes: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(40.0, 90.0) for _ in range(takes)]


def policy_from(text: str) -> PollPolicy:
    """``name=value,name=value`` over today's defaults."""
    changes = dict(item.split("=", 1) for item in text.split(",") if item)
    return dataclasses.replace(PollPolicy(), **{k: float(v) for k, v in changes.items()})


def main(argv: list[str]) -> int:
    for text in argv or [""]:
        policy = policy_from(text)
        for slots in (8, 20):
            runs = [run(policy, slots, 200, seed) for seed in range(1, 9)]
            mean = {key: statistics.mean(r[key] for r in runs) for key in runs[0]}
            print(
                f"{text or 'defaults':36s} C={slots:2d}  span/bound {mean['span']:.3f}  "
                f"polls/take {mean['polls']:.2f}  lag p50 {mean['p50']:.3f}  p95 {mean['p95']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
