"""Engine benchmark: the runner against the in-process provider simulator, in simulated seconds.

    .venv/bin/python benchmarks/bench_engine.py [--takes N] [--time-scale X] [--seed S] [--json]

Each scenario starts a fresh simulator on 127.0.0.1 (``running_simulator``) and runs a generated
manifest through ``runner.cli.run.prepare``/``execute`` with the runner's clock scaled exactly like the
simulator's, so every figure below is in *simulated* seconds and comparable across time scales.
Run directories go to a temporary directory that is removed at the end.

What is measured, per scenario:

* ``wall``: simulated seconds from the start of ``execute`` to its end (downloads included).
* ``ideal``: per provider lane, ceil(takes / concurrency) × mean true generation time (the
  simulator's own task timings); the slowest lane wins. ``efficiency`` = ideal / wall.
* ``greedy bound``: the makespan of the very same generation times on the same slots, in submit
  order, with zero submit/poll/hand-over delay — what a runner that noticed every end at once
  would get (the ideal above ignores that random durations do not pack perfectly).
  ``submit ramp``: when the last task of the first round was registered (rate limiter pacing).
* ``poll req/take``, ``polls/take``: ``/_sim/stats`` ``poll_requests`` and ``polls`` over takes.
* ``notice (ledger)``: mean of ledger ``generation_s`` − true generation time (task end − task
  registration, read from the simulator's task table): how long after a task finished the runner
  noticed it. ``notice (event)``: the same, timed exactly — the simulator's clock read inside the
  subscriber when the terminal STATUS event arrives, minus the task's end; split into ``cold``
  takes (submitted before their provider's first noticed end: unlearned geometric poll schedule)
  and ``warm`` ones (learned schedule).
* ``retries``: RETRYING events, by what was retried (submit, download, poll — a poll retry is
  one event per failed batch request).
* ``billed`` vs ``ledger``, ``duplicates`` (takes registered more than once at the provider).

``--takes N`` sets the Runware scenario's size; the AIML and Runway scenarios get 0.3 N and the
mixed flaky one 0.45 N (defaults 200 / 60 / 90). The simulator's account limits (AIML concurrency,
Runway tier) are raised to the runner's concurrency so they measure the engine, not the tier.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import yaml

from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.events import Event, EventKind
from runner.simulator import SimConfig, Simulator, running_simulator
from runner.simulator.state import World
from runner.simulator.tasks import Task

KEY_VARS = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}
URL_VARS = {"aimlapi": "AIMLAPI_BASE_URL", "runware": "RUNWARE_BASE_URL", "runway": "RUNWAYML_BASE_URL"}
DURATION = {"aimlapi": 5, "runware": 6, "runway": 5}
SHORT = {"aimlapi": "ai", "runware": "rw", "runway": "ry"}
TAKES_PER_SHOT = 10


@dataclass(frozen=True)
class Scenario:
    name: str
    profile: str
    takes: Mapping[str, int]  # provider -> takes
    concurrency: int

    @property
    def total(self) -> int:
        return sum(self.takes.values())


@dataclass
class Result:
    scenario: str
    profile: str
    takes: int
    concurrency: int
    done: int = 0
    failed: int = 0
    completion_pct: float = 0.0
    wall_s: float = 0.0
    model_gen_s: float = 0.0
    true_gen_s: float = 0.0
    ideal_s: float = 0.0
    efficiency_pct: float = 0.0
    bound_s: float = 0.0
    over_bound_pct: float = 0.0
    submit_ramp_s: float = 0.0
    tail_s: float = 0.0
    poll_requests_per_take: float = 0.0
    polls_per_take: float = 0.0
    submissions: int = 0
    max_in_flight: dict[str, int] = field(default_factory=dict)
    billed_usd: float = 0.0
    ledger_usd: float = 0.0
    billed_matches: bool = False
    retries: dict[str, int] = field(default_factory=dict)
    faults: int = 0
    duplicates: int = 0
    notice_ledger_mean_s: float = 0.0
    notice_event_mean_s: float = 0.0
    notice_event_p50_s: float = 0.0
    notice_event_max_s: float = 0.0
    notice_cold_mean_s: float = 0.0
    notice_warm_mean_s: float = 0.0
    cold_takes: int = 0
    real_s: float = 0.0


class Recorder:
    """Subscriber: counts retries and stamps, in simulated time, when each task's end was noticed."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._handles: dict[str, str] = {}
        self.retries: Counter[str] = Counter()
        self.noticed: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.RETRYING:
            self.retries[event.retry.step.value if event.retry else "task"] += 1
        elif event.kind is EventKind.SUBMITTED and event.take is not None and event.handle:
            self._handles[event.take.key] = event.handle
        elif event.kind is EventKind.STATUS and event.state is not None and event.state.terminal:
            self._notice(event)

    def _notice(self, event: Event) -> None:
        handle = self._handles.get(event.take.key) if event.take is not None else None
        if handle is not None:
            self.noticed.setdefault(handle, self._world.now())


@dataclass(frozen=True)
class Observed:
    """One finished run as the simulator saw it (times in simulated seconds)."""

    world: World
    recorder: Recorder
    started: float
    ended: float

    @property
    def wall(self) -> float:
        return self.ended - self.started


def scenarios(takes: int) -> list[Scenario]:
    small = max(1, round(0.3 * takes))
    mixed = max(1, round(0.15 * takes))
    return [
        Scenario("runware-clean", "clean", {"runware": takes}, 20),
        Scenario("aiml-clean", "clean", {"aimlapi": small}, 10),
        Scenario("runway-clean", "clean", {"runway": small}, 10),
        Scenario("mixed-flaky", "flaky", {"runware": mixed, "aimlapi": mixed, "runway": mixed}, 6),
    ]


def write_manifest(root: Path, scenario: Scenario) -> Path:
    shots: list[dict[str, Any]] = []
    for provider, count in scenario.takes.items():
        for i, start in enumerate(range(0, count, TAKES_PER_SHOT)):
            shots.append(
                {
                    "id": f"{provider}-{i:03d}",
                    "prompt": f"A slow dolly shot over location {i} for {provider}",
                    "image": f"https://example.com/{provider}/{i}.jpg",
                    "provider": provider,
                    "duration": DURATION[provider],
                    "takes": min(TAKES_PER_SHOT, count - start),
                }
            )
    doc = {
        "version": 1,
        "name": scenario.name,
        "provider": shots[0]["provider"],
        "concurrency": scenario.concurrency,
        "output_dir": str(root / "out"),
        "shots": shots,
    }
    path = root / f"{scenario.name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def sim_env(sim: Simulator, providers: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for p in providers:
        env[KEY_VARS[p]] = sim.keys[p]
        env[URL_VARS[p]] = sim.base_url
    return env


def world_of(sim: Simulator) -> World:
    """The simulator's task table (read only): the true start and end of every task."""
    return sim._world


def model_mean(provider: str) -> float:
    """Mean of the simulator's latency model: (40 + 4 × duration) × U(0.85, 1.15)."""
    return 40.0 + 4.0 * DURATION[provider]


def true_generation(task: Task) -> float:
    end = task.end_at
    assert end is not None, "a finished run left a task that never started"
    return end - task.created_at


def ledger_rows(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def run_scenario(scenario: Scenario, root: Path, scale: float, seed: int) -> Result:
    manifest = write_manifest(root, scenario)
    knobs = {"aiml_concurrency": scenario.concurrency, "runway_concurrency": scenario.concurrency}
    config = SimConfig.from_profile(scenario.profile, time_scale=scale, seed=seed, **knobs)
    bound = 30.0 + 5.0 * scale * ideal_by_model(scenario)
    async with running_simulator(config) as sim:
        world = world_of(sim)
        recorder = Recorder(world)
        options = RunOptions(
            manifest=manifest,
            environ=sim_env(sim, list(scenario.takes)),
            clock=ScaledClock(scale),
            output=root / "runs",
        )
        prepared = prepare(options)
        started = world.now()
        with anyio.fail_after(bound):
            summary = await execute(prepared, recorder)
        run = Observed(world, recorder, started, world.now())
        stats = sim.stats()
        rows = ledger_rows(prepared.run_dir)
        result = Result(scenario.name, scenario.profile, scenario.total, scenario.concurrency)
        result.done, result.failed = summary.done, summary.failed
        result.real_s = run.wall * scale
        fill_timing(result, scenario, run)
        fill_money(result, stats, rows, recorder)
        fill_notice(result, run, rows)
    return result


def ideal_by_model(scenario: Scenario) -> float:
    return max(math.ceil(n / scenario.concurrency) * model_mean(p) for p, n in scenario.takes.items())


def fill_timing(result: Result, scenario: Scenario, run: Observed) -> None:
    world, wall = run.world, run.wall
    lanes: list[float] = []
    bounds: list[float] = []
    ramps: list[float] = []
    for provider, count in scenario.takes.items():
        tasks = sorted(world.tasks[provider].values(), key=lambda t: t.created_at)
        lanes.append(math.ceil(count / scenario.concurrency) * statistics.fmean(map(true_generation, tasks)))
        bounds.append(greedy_makespan(tasks, scenario.concurrency))
        ramps.append(tasks[min(len(tasks), scenario.concurrency) - 1].created_at - run.started)
    every = [true_generation(t) for p in scenario.takes for t in world.tasks[p].values()]
    result.wall_s = wall
    result.model_gen_s = statistics.fmean(model_mean(p) for p, n in scenario.takes.items() for _ in range(n))
    result.true_gen_s = statistics.fmean(every)
    result.ideal_s = max(lanes)
    result.efficiency_pct = 100.0 * result.ideal_s / wall
    result.bound_s = max(bounds)
    result.over_bound_pct = 100.0 * (wall / result.bound_s - 1.0)
    result.submit_ramp_s = max(ramps)
    result.tail_s = run.ended - max(run.recorder.noticed.values(), default=run.ended)
    result.completion_pct = 100.0 * result.done / scenario.total


def greedy_makespan(tasks: Sequence[Task], slots: int) -> float:
    """Makespan of these exact generation times on ``slots`` slots, in submit order, with zero
    submit, poll or hand-over delay: what a runner that noticed every end instantly would get."""
    free = [0.0] * slots
    for task in tasks:
        heapq.heappush(free, heapq.heappop(free) + task.run_seconds)
    return max(free)


def fill_money(
    result: Result, stats: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], recorder: Recorder
) -> None:
    providers: Mapping[str, Mapping[str, Any]] = stats["providers"]
    used = {p: c for p, c in providers.items() if c["submissions"] > 0}
    result.poll_requests_per_take = sum(c["poll_requests"] for c in used.values()) / result.takes
    result.polls_per_take = sum(c["polls"] for c in used.values()) / result.takes
    result.submissions = sum(c["submissions"] for c in used.values())
    result.max_in_flight = {p: c["max_in_flight"] for p, c in used.items()}
    result.billed_usd = float(stats["billed_usd"])
    result.ledger_usd = round(sum(r["cost_usd"] or 0.0 for r in rows), 6)
    result.billed_matches = math.isclose(result.billed_usd, result.ledger_usd, abs_tol=1e-6)
    result.duplicates = sum(n - 1 for n in stats["submissions_by_take"].values() if n > 1)
    result.faults = sum(stats["faults"].values())
    result.retries = dict(sorted(recorder.retries.items()))


def fill_notice(result: Result, run: Observed, rows: Sequence[Mapping[str, Any]]) -> None:
    world = run.world
    by_ledger: list[float] = []
    for row in rows:
        task = world.tasks[row["provider"]].get(row["task_id"] or "")
        if task is not None and row["generation_s"] is not None:
            by_ledger.append(row["generation_s"] - true_generation(task))
    result.notice_ledger_mean_s = mean_or_nan(by_ledger)
    lags = notice_lags(run)
    every = [lag for lag, _ in lags]
    if every:
        result.notice_event_mean_s = statistics.fmean(every)
        result.notice_event_p50_s = statistics.median(every)
        result.notice_event_max_s = max(every)
    result.notice_cold_mean_s = mean_or_nan([lag for lag, cold in lags if cold])
    result.notice_warm_mean_s = mean_or_nan([lag for lag, cold in lags if not cold])
    result.cold_takes = sum(1 for _, cold in lags if cold)


def notice_lags(run: Observed) -> list[tuple[float, bool]]:
    """(noticed − ended, cold) per task; cold = submitted before its provider's first noticed end,
    so polled on the unlearned geometric schedule."""
    first: dict[str, float] = {}
    found: list[tuple[Task, float]] = []
    for handle, at in run.recorder.noticed.items():
        task = find_task(run.world, handle)
        if task is not None and task.end_at is not None:
            found.append((task, at))
            first[task.provider] = min(at, first.get(task.provider, at))
    return [(at - (task.end_at or at), task.created_at < first[task.provider]) for task, at in found]


def mean_or_nan(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def find_task(world: World, handle: str) -> Task | None:
    for tasks in world.tasks.values():
        task = tasks.get(handle)
        if task is not None:
            return task
    return None


ROWS: tuple[tuple[str, str], ...] = (
    ("takes / concurrency", "shape"),
    ("done / failed", "outcome"),
    ("completion %", "completion_pct"),
    ("wall (sim s)", "wall_s"),
    ("mean gen: model / true", "gen"),
    ("ideal (sim s)", "ideal_s"),
    ("efficiency %", "efficiency_pct"),
    ("greedy bound (sim s)", "bound_s"),
    ("wall over bound %", "over_bound_pct"),
    ("submit ramp, first round", "submit_ramp_s"),
    ("tail after last notice", "tail_s"),
    ("poll requests / take", "poll_requests_per_take"),
    ("polls / take", "polls_per_take"),
    ("submissions", "submissions"),
    ("max_in_flight", "max_in_flight"),
    ("billed / ledger USD", "money"),
    ("billed == ledger", "billed_matches"),
    ("retries (RETRYING)", "retries"),
    ("faults injected", "faults"),
    ("duplicate submissions", "duplicates"),
    ("notice, ledger mean", "notice_ledger_mean_s"),
    ("notice, event mean/p50/max", "notice"),
    ("notice cold (n) / warm", "cold"),
    ("real seconds", "real_s"),
)


def cell(result: Result, key: str) -> str:
    special = {
        "shape": lambda r: f"{r.takes} / {r.concurrency}",
        "outcome": lambda r: f"{r.done} / {r.failed}",
        "gen": lambda r: f"{r.model_gen_s:.1f} / {r.true_gen_s:.1f}",
        "money": lambda r: f"{r.billed_usd:.4f} / {r.ledger_usd:.4f}",
        "notice": lambda r: (
            f"{r.notice_event_mean_s:.2f}/{r.notice_event_p50_s:.2f}/{r.notice_event_max_s:.2f}"
        ),
        "cold": lambda r: f"{r.notice_cold_mean_s:.2f} ({r.cold_takes}) / {r.notice_warm_mean_s:.2f}",
        "max_in_flight": lambda r: " ".join(f"{SHORT[p]}:{n}" for p, n in r.max_in_flight.items()),
        "retries": lambda r: " ".join(f"{k}:{n}" for k, n in r.retries.items()) or "0",
    }
    if key in special:
        return special[key](result)
    value = getattr(result, key)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def table(results: Sequence[Result]) -> str:
    header = ["metric", *(r.scenario for r in results)]
    body = [[label, *(cell(r, key) for r in results)] for label, key in ROWS]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run_all(takes: int, scale: float, seed: int) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        for scenario in scenarios(takes):
            root = Path(tmp) / scenario.name
            root.mkdir()
            results.append(await run_scenario(scenario, root, scale, seed))
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--takes", type=int, default=200, help="Runware takes (others scale from it)")
    parser.add_argument("--time-scale", type=float, default=0.01, help="real seconds per simulated second")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.takes < 1 or not 0 < args.time_scale <= 1:
        parser.error("--takes must be >= 1 and --time-scale within (0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = anyio.run(run_all, args.takes, args.time_scale, args.seed)
    if args.json:
        doc = {"time_scale": args.time_scale, "seed": args.seed, "results": [asdict(r) for r in results]}
        print(json.dumps(doc, indent=2))
    else:
        print(f"previz-runner engine benchmark · time scale {args.time_scale} · seed {args.seed}")
        print("(all times in simulated seconds; notice = end of task at provider -> runner sees it)\n")
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
