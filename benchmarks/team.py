"""Team mode's cost and its recovery (issue 19): one process against three on one store.

    PYTHONPATH=. .venv/bin/python benchmarks/team.py            # about 5 minutes on 2 cores

A throwaway PostgreSQL cluster (tests/pgcluster.py) and a standalone ``previz simulate`` (U(40, 90)
simulated seconds, time scale 0.05). The account has 8 slots (``previz accounts set``), so one
process with ``concurrency: 8`` and three processes with ``concurrency: 8`` each share the same 8:

- *span ÷ bound*: the first task's registration to the last task's end (the simulator's
  ``/_sim/tasks``), over the list-schedule bound of the same generation times on 8 slots;
- *store transactions per take*: ``pg_stat_database.xact_commit`` of the store's database;
- *CPU per take*: the runs' user + system CPU (their ``rusage``), over the takes;
- *lease recovery*: one of two runs SIGKILLed with tasks in flight; the time from the kill to
  the first of its takes leased by the other, against ``--lease-seconds``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from tests.crash import standalone
from tests.engine.helpers import shot, write_manifest
from tests.pgcluster import running_cluster

SCALE = 0.05


def bound(durations: list[float], slots: int) -> float:
    """The list-schedule makespan of ``durations`` in order on ``slots`` slots."""
    free = [0.0] * slots
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def _accounts_set(url: str, store: str, provider: str, slots: int) -> None:
    argv = [
        sys.executable,
        "-m",
        "runner",
        "accounts",
        "set",
        provider,
        "--slots",
        str(slots),
        "--store",
        store,
    ]
    subprocess.run(argv, env=standalone.env_for(url), check=True, capture_output=True, timeout=60)


def _commits(store: str) -> int:
    with psycopg.connect(store) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _get(url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
        return json.loads(response.read())


def _span(url: str, provider: str, slots: int) -> tuple[float, float]:
    mine = [t for t in _get(url, "/_sim/tasks")["tasks"] if t["provider"] == provider]
    tasks = sorted(mine, key=lambda t: t["created_at"])
    span = max(t["end_at"] for t in tasks) - tasks[0]["created_at"]
    return span, span / bound([t["end_at"] - t["start_at"] for t in tasks], slots)


def coordination(workdir: Path, store: str, processes: int, takes: int) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    shots = [shot(f"s{i}", "runware", takes=min(100, takes - i)) for i in range(0, takes, 100)]
    manifest = write_manifest(workdir, shots, name=f"p{processes}", concurrency=8)
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=40, gen_max_s=90) as url:
        _accounts_set(url, store, "runware", 8)
        commits, cpu = _commits(store), resource.getrusage(resource.RUSAGE_CHILDREN)
        runs = [
            standalone.start_run(
                manifest, url, "--store", store, "--output", str(workdir / f"ws{i}"), clock_scale=SCALE
            )
            for i in range(processes)
        ]
        ended = [standalone.finish(run, timeout=900) for run in runs]
        codes = [code for code, _, _ in ended]
        if any(codes):
            raise SystemExit(f"a run failed: {[err[-600:] for _, _, err in ended]}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        span, ratio = _span(url, "runware", 8)
        accepted = standalone.stats(url)["providers"]["runware"]["accepted"]
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return {
        "processes": processes,
        "exit": codes,
        "accepted": accepted,
        "span_s": round(span, 1),
        "span_over_bound": round(ratio, 4),
        "store_commits_per_take": round((_commits(store) - commits) / takes, 2),
        "cpu_ms_per_take": round(1000 * used / takes, 1),
    }


def _settled(store: str, lease_s: float) -> None:
    """A lease lapses only once the server has been up a lease time and two reconnect waits (10 s):
    a server that has just started is waited for, as a studio's would have been up for long."""
    with psycopg.connect(store, autocommit=True) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())"
        ).fetchone()
    time.sleep(max(0.0, lease_s + 10.0 - float(row[0] if row else 0.0)))


def recovery(workdir: Path, store: str, lease_s: float) -> dict[str, Any]:
    _settled(store, lease_s)
    workdir.mkdir(parents=True)
    manifest = write_manifest(workdir, [shot("b", "runware", takes=16)], name="recovery", concurrency=4)
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=60, gen_max_s=60) as url:
        extra = ("--store", store, "--lease-seconds", str(lease_s))
        first = standalone.start_run(manifest, url, *extra, "--output", str(workdir / "a"), clock_scale=SCALE)
        while standalone.stats(url)["providers"]["runware"]["accepted"] < 2:
            time.sleep(0.01)
        second = standalone.start_run(
            manifest, url, *extra, "--output", str(workdir / "b"), clock_scale=SCALE
        )
        time.sleep(0.5)
        with psycopg.connect(store, autocommit=True) as conn:
            dead = conn.execute(
                "SELECT token FROM owners WHERE scope = 'recovery' AND pid = %s", (first.pid,)
            ).fetchone()
            first.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            run = dead[0] if dead else ""
            found = conn.execute(
                "SELECT key FROM takes WHERE scope = 'recovery' AND lease_run = %s AND state = 'submitted'",
                (run,),
            )
            held = [r[0] for r in found.fetchall()]
            give_up = killed + 10 * lease_s + 60
            while held and _still_held(conn, held, run) == len(held) and time.monotonic() < give_up:
                time.sleep(0.01)
            taken = time.monotonic() - killed
        first.communicate()
        code = standalone.finish(second, timeout=900)[0]
        accepted = standalone.stats(url)["providers"]["runware"]["accepted"]
    return {
        "lease_s": lease_s,
        "takes_in_flight_at_kill": len(held),
        "recovered_after_s": round(taken, 2),
        "other_run_exit": code,
        "accepted": accepted,
    }


def _still_held(conn: psycopg.Connection[Any], keys: list[str], run: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM takes WHERE key = ANY(%s) AND lease_run = %s", (keys, run)
    ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--takes", type=int, default=200)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=("coordination", "recovery"), help="one part only")
    parser.add_argument("--repeat", type=int, default=1, help="lease recovery measured this many times")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    with running_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        for n in (1, 3) if args.only != "recovery" else ():
            store = cluster.create_database(f"coord{n}")
            results[f"processes_{n}"] = coordination(Path(tmp) / f"c{n}", store, n, args.takes)
            print(json.dumps(results[f"processes_{n}"]))
        for i in range(args.repeat if args.only != "coordination" else 0):
            found = recovery(Path(tmp) / f"r{i}", cluster.create_database(f"recovery{i}"), args.lease)
            results.setdefault("recovery", []).append(found)
            print(json.dumps(found))
    results["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
