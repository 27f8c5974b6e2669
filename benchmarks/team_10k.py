"""10,000 takes over three processes on one store (issue 19): does anything grow faster than linear?

    PYTHONPATH=. .venv/bin/python benchmarks/team_10k.py --json benchmarks/team-10k-results.json
    PYTHONPATH=. .venv/bin/python benchmarks/team_10k.py --sizes 500 --profile /tmp/prof   # cProfile

The pieces of ``benchmarks/team.py``: a throwaway PostgreSQL cluster (tests/pgcluster.py), a
standalone ``previz simulate`` (clean, Runware — the fewest requests a take — with generation
U(20, 40) simulated seconds at time scale 0.01), and three ``previz run --store`` processes of one
manifest with ``concurrency: 16`` each, on one Runware account of 48 slots. Each size gets a fresh
database and fresh folders. Per size:

- *peak RSS* of each run process (``ru_maxrss`` from ``wait4`` on that process alone);
- *database size* (``pg_database_size`` once the runs have ended; a take: what the run added to
  the empty store's) and its largest tables;
- *store transactions a take*: ``pg_stat_database.xact_commit`` of the store's database;
- *wall time* from the first start to the last exit, and *CPU a take* (all three runs' user +
  system time, over the takes); the simulator's poll requests a take.

*Linear* means the figure a take stays put as the sizes grow: ``growth`` is the figure a take at
the largest size over the same at the smallest (1.0 = linear; RSS is compared on its growth over
the smallest size's, a take). ``--profile DIR`` runs the first process under cProfile (the
process's CPU clock, worker threads included) and prints its top functions by their own CPU and
calls a take of the takes it saved, to find the step that grows.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from team import _accounts_set, _commits

from tests.crash import standalone
from tests.engine.helpers import shot, write_manifest
from tests.pgcluster import running_cluster

PROCESSES = 3


@dataclass(frozen=True)
class Night:
    """What every size shares: the simulated world and the runs' shape."""

    time_scale: float = 0.01
    gen_s: tuple[float, float] = (20.0, 40.0)
    concurrency: int = 16  # each run's own
    slots: int = 48  # the account's, shared by the three
    profile: Path | None = None


@dataclass
class Ended:
    """One run process as it ended: its exit code and its own rusage."""

    code: int
    peak_rss_mb: float
    cpu_s: float
    log: str


#: ``previz run`` under cProfile with a CPU clock (the event loop's idle waits cost nothing);
#: only the main thread is seen — the store's calls in worker threads show as ``run_sync``.
PROFILED = """
import cProfile, sys, time
from runner.cli.main import main
profile = cProfile.Profile(time.process_time)
code = profile.runcall(main, sys.argv[2:])
profile.dump_stats(sys.argv[1])
raise SystemExit(code)
"""


def _argv(manifest: Path, store: str, out: Path, night: Night, profile: Path | None) -> list[str]:
    how = ["-c", PROFILED, str(profile)] if profile is not None else ["-m", "runner"]
    run = ["run", str(manifest), "--clock-scale", str(night.time_scale), "--store", store]
    return [sys.executable, *how, *run, "--output", str(out)]


def _start(argv: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    """A run whose output goes to a file (10,000 takes' lines would fill a pipe nobody reads)."""
    with log.open("wb") as sink:
        return subprocess.Popen(argv, env=standalone.env_for(url), stdout=sink, stderr=subprocess.STDOUT)


def _reap(proc: subprocess.Popen[bytes], log: Path) -> Ended:
    """Wait for this one process and read its own peak RSS and CPU (``wait4``, not the children's sum)."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = log.read_text(encoding="utf-8", errors="replace")[-800:]
    return Ended(proc.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, tail)


def _size(store: str) -> int:
    with psycopg.connect(store) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def _database(store: str) -> dict[str, Any]:
    with psycopg.connect(store) as conn:
        tables = conn.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables ORDER BY 2 DESC LIMIT 5"
        ).fetchall()
        done = conn.execute("SELECT count(*) FROM takes WHERE state = 'done'").fetchone()
    return {
        "bytes": _size(store),
        "tables_kb": {name: round(int(n) / 1024) for name, n in tables},
        "takes_done": int(done[0]) if done else 0,
    }


def _manifest(workdir: Path, takes: int, night: Night) -> Path:
    shots = [shot(f"s{i:03d}", "runware", takes=min(100, takes - i)) for i in range(0, takes, 100)]
    return write_manifest(workdir, shots, name="big", concurrency=night.concurrency)


def _three(workdir: Path, store: str, url: str, night: Night, profiles: list[Path | None]) -> list[Ended]:
    """The three runs started together and reaped one by one (each with its own rusage)."""
    manifest = workdir / "big.yaml"
    logs = [workdir / f"ws{i}.log" for i in range(PROCESSES)]
    procs = [
        _start(_argv(manifest, store, workdir / f"ws{i}", night, profiles[i]), url, logs[i])
        for i in range(PROCESSES)
    ]
    return [_reap(proc, log) for proc, log in zip(procs, logs, strict=True)]


def one_size(root: Path, store: str, takes: int, night: Night) -> dict[str, Any]:
    """Three processes over ``takes`` takes on a fresh database; the figures of that size."""
    workdir = root / f"n{takes}"
    workdir.mkdir(parents=True)
    _manifest(workdir, takes, night)
    profiles = [night.profile / f"n{takes}-ws0.prof" if night.profile else None, None, None]
    low, high = night.gen_s
    sim = standalone.simulator(
        "clean", time_scale=night.time_scale, gen_min_s=low, gen_max_s=high, runware_capacity=200
    )
    with sim as url:
        _accounts_set(url, store, "runware", night.slots)
        commits, empty, load = _commits(store), _size(store), os.getloadavg()
        started = time.monotonic()
        ended = _three(workdir, store, url, night, profiles)
        wall = time.monotonic() - started
        bill = standalone.stats(url)["providers"]["runware"]
    time.sleep(1.5)  # the backends' last statistics reach pg_stat_database
    if any(e.code for e in ended):
        raise SystemExit(f"a run failed at {takes} takes: {[e.log for e in ended]}")
    result = {
        "takes": takes,
        "exit": [e.code for e in ended],
        "accepted": bill["accepted"],
        "peak_rss_mb": [round(e.peak_rss_mb, 1) for e in ended],
        "cpu_s": [round(e.cpu_s, 1) for e in ended],
        "cpu_ms_per_take": round(1000 * sum(e.cpu_s for e in ended) / takes, 2),
        "wall_s": round(wall, 1),
        "wall_ms_per_take": round(1000 * wall / takes, 2),
        "store_commits_per_take": round((_commits(store) - commits) / takes, 2),
        "poll_requests_per_take": round(bill["poll_requests"] / takes, 2),
        "max_in_flight": bill["max_in_flight"],
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "database": {**_database(store), "bytes_before_run": empty},
        "clips": [len(list((workdir / f"ws{i}" / "big").rglob("*.mp4"))) for i in range(PROCESSES)],
    }
    result["database"]["bytes_per_take"] = round((result["database"]["bytes"] - empty) / takes)
    for prof, saved in zip(profiles, result["clips"], strict=True):
        if prof is not None:
            _print_profile(prof, saved)
    return result


def _print_profile(path: Path, takes: int, top: int = 25) -> None:
    """The profiled run's heaviest functions by their own CPU, µs a take of the ``takes`` it saved
    (its own share, not the manifest's): compare across sizes."""
    if takes == 0:
        print(f"-- profile of ws0: it saved no take (the others were quicker); {path} holds it")
        return
    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    print(f"-- profile of ws0 ({takes} takes saved): own and cumulative CPU µs a take, calls a take")
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in rows[:top]:
        where = f"{Path(file).name}:{line}({name})"
        print(f"{1e6 * tottime / takes:8.0f} {1e6 * cumtime / takes:9.0f} {calls / takes:8.2f}  {where}")


def _per_take(doc: dict[str, Any], figure: str) -> float:
    if figure == "database_bytes":
        return float(doc["database"]["bytes_per_take"])
    return float(doc[figure]) / int(doc["takes"])


def growth(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure a take at the largest size over the smallest (1.0: linear); RSS by its slope."""
    small, large = sizes[0], sizes[-1]
    figures = ("cpu_ms_per_take", "wall_ms_per_take", "store_commits_per_take", "poll_requests_per_take")
    out: dict[str, Any] = {f: round(large[f] / small[f], 3) for f in figures if small[f]}
    out["database_bytes_per_take"] = round(
        _per_take(large, "database_bytes") / _per_take(small, "database_bytes"), 3
    )
    extra = (large["takes"] - small["takes"]) / 1000
    pairs = zip(small["peak_rss_mb"], large["peak_rss_mb"], strict=True)
    out["rss_mb_per_1000_more_takes"] = [round((b - a) / extra, 2) for a, b in pairs] if extra else []
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000])
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--profile", type=Path, help="cProfile the first process of each size into DIR")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    night = Night(time_scale=args.time_scale, profile=args.profile)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"load_before": os.getloadavg(), "night": _shown(night), "sizes": []}
    with running_cluster() as cluster, tempfile.TemporaryDirectory(prefix="team10k-") as tmp:
        for takes in args.sizes:
            store = cluster.create_database(f"big{takes}")
            results["sizes"].append(one_size(Path(tmp), store, takes, night))
            print(json.dumps(results["sizes"][-1]), flush=True)
    results["growth_largest_over_smallest"] = growth(results["sizes"])
    results["load_after"] = os.getloadavg()
    print(json.dumps({k: results[k] for k in ("growth_largest_over_smallest", "load_before", "load_after")}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _shown(night: Night) -> dict[str, Any]:
    return {
        "processes": PROCESSES,
        "provider": "runware",
        "time_scale": night.time_scale,
        "gen_s": list(night.gen_s),
        "concurrency_each": night.concurrency,
        "account_slots": night.slots,
    }


if __name__ == "__main__":
    main()
