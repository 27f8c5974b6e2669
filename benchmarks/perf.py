"""Performance benchmark: previz beside each vendor's own way of waiting, plus scale, validate, download.

    .venv/bin/python benchmarks/perf.py            # everything, about 20 minutes on 2 cores
    .venv/bin/python benchmarks/perf.py --quick    # smaller counts, time scale 0.01: about 2 minutes
    .venv/bin/python benchmarks/perf.py --only side --gen 10 --takes 24 --concurrency 8 --time-scale 0.2
                                                   # fixed 10 s generations: the first wave's notice

The simulator runs in its own process (``previz simulate``, generation times drawn from
U(40, 90) simulated seconds, account limits far above the runner's). Every client — previz and
its peers (``peers.py``) — uses the same time scale, so all figures are in simulated seconds.

The side-by-side time scale is 0.05 (a simulated minute in 3 s). What happens in real time is
multiplied by 1 / scale: previz's durable journal commit before each submit, the submit itself
and the loop's work between a notice and the next submit take 5–8 ms of real time on this machine
— 0.1–0.15 simulated s at 0.05, 0.5–0.8 s at 0.01 (the slot *turnover* column), where a real
night (scale 1) sees 0.005–0.008 s. The peers write nothing down. ``--time-scale 0.01`` shows it.
The simulator's ``/_sim/tasks`` gives each task's true registration, start and end; the clients'
own notice times are read on the same clock (CLOCK_MONOTONIC is shared between processes).

Sections:

1. **Side by side** (C = 8 and 20, each provider): *span ÷ bound* — registration of the first
   task to the last notice, over the list-schedule bound (the same generation times, in submit
   order, on C slots, noticed instantly); *wall ÷ bound* — the same from the client's start
   (previz: before it reads the manifest); *poll req/take* (``/_sim/stats`` delta); *lag p50/p95*
   — notice minus true end, as a share of that take's generation time; *turnover p50* — from a
   notice to the registration of the task that took its slot (simulated s).
2. **Scale**: 10,000 Runware takes (``--scale-takes``) in a child process: peak RSS, runner CPU ms
   per take, event-loop stall p99 (a 10 ms ticker's overshoot), finish after the last task's end.
3. **Validate**: ``previz validate`` of a 10,000-shot manifest, wall time of the whole command.
4. **Download**: a 200 MB clip from the simulator — previz's ``download`` vs curl vs curl + fsync,
   and the chunked single-hop writer proposed for ``download.py`` (``proposed_download`` below).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PEER_OF, Peer, scale_runway_sdk

from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.clips import ClipDownloader
from runner.engine.download import download
from runner.engine.events import Event, EventKind
from runner.simulator.config import DEFAULT_KEYS

KEY_VARS = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}
URL_VARS = {"aimlapi": "AIMLAPI_BASE_URL", "runware": "RUNWARE_BASE_URL", "runway": "RUNWAYML_BASE_URL"}
DURATION = {"aimlapi": 5, "runware": 6, "runway": 5}
PROVIDERS = ("aimlapi", "runware", "runway")
ROOT = Path(__file__).resolve().parent.parent
PREVIZ = str(Path(sys.executable).with_name("previz"))


# -- the simulator in its own process -------------------------------------------------------------


class SimProcess:
    """``previz simulate`` on a free loopback port; the simulated clock read from this side."""

    def __init__(self, scale: float, **knobs: float) -> None:
        args = [PREVIZ, "simulate", "--port", "0", "--time-scale", str(scale), "--seed", "7"]
        for name, value in {"gen_min_s": 40, "gen_max_s": 90, **knobs}.items():
            args += ["--set", f"{name}={value}"]
        self.scale = scale
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().rsplit(" on ", 1)[1].strip()
        self._t0 = self._sync()

    def _sync(self) -> float:
        before = time.monotonic()
        now = self.get("/_sim/tasks")["now"]
        after = time.monotonic()
        return (before + after) / 2 - now * self.scale

    def now(self) -> float:
        """Simulated seconds, as the simulator counts them."""
        return (time.monotonic() - self._t0) / self.scale

    def get(self, path: str) -> Any:
        import urllib.request

        with urllib.request.urlopen(self.base_url + path) as resp:
            return json.loads(resp.read())

    def env(self, providers: Sequence[str]) -> dict[str, str]:
        env = {KEY_VARS[p]: DEFAULT_KEYS[p] for p in providers}
        env.update({URL_VARS[p]: self.base_url for p in providers})
        return env

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextmanager
def simulator(scale: float, **knobs: float) -> Iterator[SimProcess]:
    sim = SimProcess(scale, **knobs)
    try:
        yield sim
    finally:
        sim.stop()


BIG = {"aiml_concurrency": 100_000, "runway_concurrency": 100_000, "runware_capacity": 100_000}


# -- manifests ----------------------------------------------------------------------------------


def write_manifest(root: Path, label: str, provider: str, takes: int, concurrency: int) -> Path:
    """``takes`` takes of one provider; ``label`` in every prompt makes every take key new."""
    shots = [
        {
            "id": f"{label}-{i:04d}",
            "prompt": f"{label}: a slow dolly shot over location {i}",
            "image": f"https://example.com/{provider}/{i}.jpg",
            "provider": provider,
            "duration": DURATION[provider],
            "takes": min(10, takes - start),
        }
        for i, start in enumerate(range(0, takes, 10))
    ]
    doc = {
        "version": 1,
        "name": label,
        "provider": provider,
        "concurrency": concurrency,
        "output_dir": str(root / "out"),
        "shots": shots,
    }
    path = root / f"{label}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


# -- one run, measured ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """Which side-by-side rows to run (all of them unless narrowed on the command line)."""

    concurrency: tuple[int, ...] = (8, 20)
    providers: tuple[str, ...] = PROVIDERS
    peers: bool = True
    gen: tuple[float, float] = (40.0, 90.0)  # generation times: U(low, high) simulated s


@dataclass
class Row:
    concurrency: int
    provider: str
    client: str
    takes: int
    span_over_bound: float
    poll_requests_per_take: float
    lag_p50: float
    lag_p95: float
    noticed: int
    turnover_p50: float = 0.0
    first_wave_s: float = 0.0
    lag_mean_s: float = 0.0
    wall_over_bound: float = 0.0


class Notices:
    """previz subscriber: when (simulated) each task's terminal status arrived."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.handles: dict[str, str] = {}
        self.at: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.SUBMITTED and event.take is not None and event.handle:
            self.handles[event.take.key] = event.handle
        elif event.kind is EventKind.STATUS and event.state is not None and event.state.terminal:
            handle = self.handles.get(event.take.key) if event.take is not None else None
            if handle is not None:
                self.at.setdefault(handle, self.sim.now())


def list_schedule_bound(gens: Sequence[float], slots: int) -> float:
    free = [0.0] * slots
    for gen in gens:
        heapq.heappush(free, heapq.heappop(free) + gen)
    return max(free)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    sim: SimProcess, provider: str, before: Mapping[str, Any], notices: Mapping[str, float], concurrency: int
) -> dict[str, float]:
    """Span ÷ bound, poll requests per take and lag shares for the tasks registered since ``before``;
    wall ÷ bound counts from ``before["started"]``, the client's start (previz: before it reads the
    manifest, so its start-up — journal, preflight — counts too)."""
    seen = {t["id"] for t in before["tasks"]}
    tasks = sorted(
        (t for t in sim.get("/_sim/tasks")["tasks"] if t["provider"] == provider and t["id"] not in seen),
        key=lambda t: t["created_at"],
    )
    start = tasks[0]["created_at"]
    bound = list_schedule_bound([t["end_at"] - t["start_at"] for t in tasks], concurrency)
    lags = [
        (notices[t["id"]] - t["end_at"]) / (t["end_at"] - t["created_at"])
        for t in tasks
        if t["id"] in notices
    ]
    stats = sim.get("/_sim/stats")["providers"][provider]
    freed = sorted(notices[t["id"]] for t in tasks if t["id"] in notices)
    turnover = [t["created_at"] - at for t, at in zip(tasks[concurrency:], freed, strict=False)]
    return {
        "span_over_bound": (max(notices.values()) - start) / bound,
        "wall_over_bound": (max(notices.values()) - before["started"]) / bound,
        "poll_requests_per_take": (stats["poll_requests"] - before["polls"]) / len(tasks),
        "lag_p50": quantile(lags, 0.5),
        "lag_p95": quantile(lags, 0.95),
        "noticed": float(len(lags)),
        "turnover_p50": quantile(turnover, 0.5) if turnover else 0.0,
        "first_wave_s": tasks[min(concurrency, len(tasks)) - 1]["created_at"] - start,
        "lag_mean_s": statistics.mean(notices[t["id"]] - t["end_at"] for t in tasks if t["id"] in notices),
    }


def snapshot(sim: SimProcess, provider: str) -> dict[str, Any]:
    return {
        "started": sim.now(),
        "tasks": sim.get("/_sim/tasks")["tasks"],
        "polls": sim.get("/_sim/stats")["providers"][provider]["poll_requests"],
    }


async def run_previz(sim: SimProcess, root: Path, provider: str, takes: int, concurrency: int) -> Row:
    label = f"previz-{provider}-c{concurrency}"
    manifest = write_manifest(root, label, provider, takes, concurrency)
    options = RunOptions(
        manifest=manifest, environ=sim.env([provider]), clock=ScaledClock(sim.scale), output=root / "runs"
    )
    before = snapshot(sim, provider)
    prepared = prepare(options)
    notices = Notices(sim)
    await execute(prepared, notices)
    got = measure(sim, provider, before, notices.at, concurrency)
    return Row(concurrency, provider, "previz", takes, **got)  # type: ignore[arg-type]


async def run_peer(sim: SimProcess, root: Path, provider: str, takes: int, concurrency: int) -> Row:
    label = f"peer-{provider}-c{concurrency}"
    manifest = write_manifest(root, label, provider, takes, concurrency)
    plan = prepare(RunOptions(manifest=manifest, environ=sim.env([provider])))
    before = snapshot(sim, provider)
    peer = Peer(provider, sim.base_url, DEFAULT_KEYS[provider], sim.scale, sim.now)
    await peer.run(plan.takes, concurrency)
    got = measure(sim, provider, before, peer.notices, concurrency)
    return Row(concurrency, provider, PEER_OF[provider], takes, **got)  # type: ignore[arg-type]


async def side_by_side(scale: float, takes: int, root: Path, pick: Pick) -> list[Row]:
    scale_runway_sdk(scale)
    rows: list[Row] = []
    gen = {"gen_min_s": pick.gen[0], "gen_max_s": pick.gen[1]}
    with simulator(scale, **BIG, **gen) as sim:
        for concurrency in pick.concurrency:
            for provider in pick.providers:
                rows.append(await run_previz(sim, root, provider, takes, concurrency))
                print(f"  {rows[-1]}", file=sys.stderr)
                if pick.peers:
                    rows.append(await run_peer(sim, root, provider, takes, concurrency))
                    print(f"  {rows[-1]}", file=sys.stderr)
    return rows


# -- 2. scale ------------------------------------------------------------------------------------


async def _stall_monitor(stalls: list[float], tick: float = 0.01) -> None:
    while True:
        start = time.perf_counter()
        await anyio.sleep(tick)
        stalls.append(time.perf_counter() - start - tick)


async def scale_child(base_url: str, scale: float, takes: int, concurrency: int, out: Path) -> None:
    """In a fresh process: one big previz run, measured from inside."""
    sim = SimProcess.__new__(SimProcess)
    sim.base_url, sim.scale = base_url, scale
    sim._t0 = sim._sync()
    with tempfile.TemporaryDirectory(prefix="perf-scale-") as tmp:
        manifest = write_manifest(Path(tmp), "scale", "runware", takes, concurrency)
        options = RunOptions(
            manifest=manifest, environ=sim.env(["runware"]), clock=ScaledClock(scale), output=Path(tmp) / "r"
        )
        prepared = prepare(options)
        stalls: list[float] = []
        cpu0 = time.process_time()
        started = sim.now()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stall_monitor, stalls)
            summary = await execute(prepared)
            tg.cancel_scope.cancel()
        finished = sim.now()
        cpu = time.process_time() - cpu0
    ends = [t["end_at"] for t in sim.get("/_sim/tasks")["tasks"] if t["end_at"] is not None]
    last_end = max(ends)
    write = out.write_text  # the run is over: blocking is fine here
    write(
        json.dumps(
            {
                "takes": takes,
                "concurrency": concurrency,
                "done": summary.done,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "cpu_ms_per_take": 1000 * cpu / takes,
                "stall_p99_ms": 1000 * quantile(stalls, 0.99),
                "stall_max_ms": 1000 * max(stalls),
                "finish_after_last_end_s": finished - last_end,
                "finish_after_last_end_share": (finished - last_end) / (last_end - started),
            }
        )
    )


def scale_run(scale: float, takes: int, concurrency: int) -> dict[str, Any]:
    with simulator(scale, **BIG) as sim, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scale.json"
        args = [sys.executable, __file__, "--scale-child", sim.base_url, str(scale), str(takes)]
        subprocess.run([*args, str(concurrency), str(out)], check=True)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# -- 3. validate ---------------------------------------------------------------------------------


def validate_time(shots: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="perf-validate-") as tmp:
        root = Path(tmp)
        images = sorted((ROOT / "manifests" / "images").iterdir())
        (root / "images").mkdir()
        for image in images:
            (root / "images" / image.name).write_bytes(image.read_bytes())
        doc = {
            "version": 1,
            "name": "validate",
            "provider": "runware",
            "shots": [
                {
                    "id": f"shot-{i:05d}",
                    "provider": PROVIDERS[i % 3],
                    "prompt": f"A slow dolly shot over location {i}, gulls circling",
                    "image": f"images/{images[i % len(images)].name}",
                    "duration": 5,
                    "ratio": "16:9",
                    "tags": ["act1"],
                }
                for i in range(shots)
            ],
        }
        manifest = root / "validate.yaml"
        manifest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([PREVIZ, "validate", str(manifest)], check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
    return {"shots": shots, "best_s": min(walls), "median_s": statistics.median(walls)}


# -- 4. download ---------------------------------------------------------------------------------


async def _clip_url(sim: SimProcess) -> str:
    """Submit one Runware take and poll until its (padded) clip is ready."""
    from runner.providers import runware
    from runner.providers.base import SubmitRequest

    manifest = write_manifest(Path(tempfile.mkdtemp(prefix="perf-dl-")), "dl", "runware", 1, 1)
    take = prepare(RunOptions(manifest=manifest, environ=sim.env(["runware"]))).takes[0]
    task = runware.build_task(SubmitRequest(take, image=take.image.source))
    headers = {"Authorization": f"Bearer {DEFAULT_KEYS['runware']}"}
    url = sim.base_url + runware.PATH
    async with aiohttp.ClientSession() as session:
        await (await session.post(url, json=[task], headers=headers)).json()
        while True:
            await anyio.sleep(0.2)
            poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
            answer = await (await session.post(url, json=poll, headers=headers)).json()
            for item in answer.get("data") or []:
                if item.get("status") == "success":
                    return str(item["videoURL"])


async def inline_download(session: aiohttp.ClientSession, url: str, dest: Path) -> None:
    """Variant A for download.py: 1 MB reads, hashed and written right in the event loop (no
    thread hop at all), one fsync in a thread at the end. Fast; its cost is loop stalls."""
    import hashlib

    hasher = hashlib.sha256()
    with dest.open("wb") as fh:
        async with session.get(url) as resp:
            async for piece in resp.content.iter_chunked(1024 * 1024):
                hasher.update(piece)
                fh.write(piece)
        fh.flush()
        await anyio.to_thread.run_sync(os.fsync, fh.fileno())


async def batched_download(session: aiohttp.ClientSession, url: str, dest: Path, batch: int) -> None:
    """Variant B for download.py: 256 KB reads gathered to ``batch`` bytes, each batch hashed and
    written in one worker-thread hop (not one hop per 256 KB chunk), one fsync at the end."""
    import hashlib

    hasher = hashlib.sha256()
    with dest.open("wb") as fh:

        def write(data: bytes) -> None:
            hasher.update(data)
            fh.write(data)

        async with session.get(url) as resp:
            pieces: list[bytes] = []
            held = 0
            async for piece in resp.content.iter_chunked(256 * 1024):
                pieces.append(piece)
                held += len(piece)
                if held >= batch:
                    await anyio.to_thread.run_sync(write, b"".join(pieces))
                    pieces, held = [], 0
            await anyio.to_thread.run_sync(write, b"".join(pieces))
        fh.flush()
        await anyio.to_thread.run_sync(os.fsync, fh.fileno())


async def _one_download(kind: str, url: str, dest: Path) -> list[float]:
    stalls: list[float] = []
    async with aiohttp.ClientSession() as session, anyio.create_task_group() as tg:
        tg.start_soon(_stall_monitor, stalls)
        if kind == "previz":
            await download(session, url, dest, provider="runware", take="bench")
        elif kind == "inline-1MB":
            await inline_download(session, url, dest)
        else:
            await batched_download(session, url, dest, 16 * 1024 * 1024)
        tg.cancel_scope.cancel()
    return stalls


def _timed_child(kind: str, url: str, dest: Path) -> dict[str, float]:
    """One download in a fresh process (so its RSS growth is its own): wall, RSS growth, stalls."""
    out = dest.with_suffix(".json")
    subprocess.run([sys.executable, __file__, "--download-child", kind, url, str(dest), str(out)], check=True)
    result: dict[str, float] = json.loads(out.read_text())
    return result


def download_child(kind: str, url: str, dest: Path, out: Path) -> None:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stalls = anyio.run(_one_download, kind, url, dest)
    wall = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    stall_max = 1000 * max(stalls, default=0.0)
    out.write_text(json.dumps({"wall_s": wall, "rss_growth_mb": growth, "stall_max_ms": stall_max}))


def _curl(url: str, dest: Path, fsync: bool) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(dest), url], check=True)
    if fsync:
        fd = os.open(dest, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - start


def download_bench(size: int, rounds: int) -> dict[str, Any]:
    kinds = ("curl", "curl+fsync", "previz", "inline-1MB", "hop-per-16MB")
    with simulator(0.001, clip_bytes=size) as sim, tempfile.TemporaryDirectory(prefix="perf-dl-") as tmp:
        url = anyio.run(_clip_url, sim)
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        growth: dict[str, float] = {}
        stalls: dict[str, float] = {}
        for i in range(rounds):
            for kind in kinds:
                dest = Path(tmp) / f"{kind}-{i}.mp4"
                if kind.startswith("curl"):
                    walls[kind].append(_curl(url, dest, kind == "curl+fsync"))
                else:
                    got = _timed_child(kind, url, dest)
                    walls[kind].append(got["wall_s"])
                    growth[kind] = max(growth.get(kind, 0.0), got["rss_growth_mb"])
                    stalls[kind] = max(stalls.get(kind, 0.0), got["stall_max_ms"])
                dest.unlink()
        best = {k: min(v) for k, v in walls.items()}
        return {
            "bytes": size,
            "rounds": rounds,
            "best_s": best,
            "vs_curl_fsync": {k: best["curl+fsync"] / v for k, v in best.items()},
            "previz_vs_curl": best["curl"] / best["previz"],
            "rss_growth_mb": growth,
            "loop_stall_max_ms": stalls,
        }


async def _fetch_all(url: str, root: Path, clips: int, limit: int) -> float:
    """``clips`` takes' clips at once through the runner's ClipDownloader (``limit`` at a time)."""
    async with aiohttp.ClientSession() as session:
        clipper = ClipDownloader(session, root, limit=limit)
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(clips):
                tg.start_soon(
                    partial(clipper.fetch, url, f"l{limit}/c{i}.mp4", provider="runware", take=f"c{i}")
                )
        return time.perf_counter() - started


def download_limits(size: int, clips: int, mbps: float | None, limits: Sequence[int]) -> dict[str, Any]:
    """Many clips ready at once (a Runware batch, a rerun fetching paid clips): wall time by limit."""
    knobs = {"clip_bytes": size} if mbps is None else {"clip_bytes": size, "download_mbps": mbps}
    with simulator(0.001, **knobs) as sim, tempfile.TemporaryDirectory(prefix="perf-dl-") as tmp:
        url = anyio.run(_clip_url, sim)
        walls = {str(n): anyio.run(_fetch_all, url, Path(tmp), clips, n) for n in limits}
    return {"clip_bytes": size, "clips": clips, "per_connection_mbps": mbps, "wall_s": walls}


# -- report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_avg_1_5_15": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def side_table(rows: Sequence[Row]) -> str:
    lines = [
        "| C | provider | client | span / bound | wall / bound | poll req/take | lag p50 / gen"
        " | lag p95 / gen | turnover p50 (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.concurrency} | {r.provider} | {r.client} | {r.span_over_bound:.3f} | "
            f"{r.wall_over_bound:.3f} | {r.poll_requests_per_take:.2f} | {r.lag_p50:.3f} | "
            f"{r.lag_p95:.3f} | {r.turnover_p50:.2f} |"
        )
    return "\n".join(lines)


def report(doc: Mapping[str, Any]) -> str:
    parts = [f"machine: {json.dumps(doc['machine'])}", f"time scale: {doc['time_scale']}", ""]
    if "side_by_side" in doc:
        parts += [side_table([Row(**r) for r in doc["side_by_side"]]), ""]
    for key in ("scale", "validate", "download", "download_limits"):
        if key in doc:
            parts.append(f"{key}: {json.dumps(doc[key], indent=1)}")
    return "\n".join(parts)


def _gen_range(text: str) -> tuple[float, float]:
    """``10`` (every take 10 s) or ``40,90`` (uniform between)."""
    parts = [float(x) for x in text.split(",")]
    if len(parts) not in (1, 2) or not 0 <= parts[0] <= parts[-1]:
        raise argparse.ArgumentTypeError("expected SECONDS or LOW,HIGH with 0 <= LOW <= HIGH")
    return parts[0], parts[-1]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    p.add_argument(
        "--time-scale",
        type=float,
        dest="scale",
        help="side by side: real seconds per simulated second (0.05; --quick: 0.01)",
    )
    p.add_argument("--scale-time-scale", type=float, default=0.01, help="the 10,000-take run's (0.01)")
    p.add_argument("--takes", type=int, help="takes per side-by-side run (200; --quick: 60)")
    p.add_argument("--scale-takes", type=int, default=10_000)
    p.add_argument("--only", choices=("side", "scale", "validate", "download", "limits"), action="append")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--provider", choices=PROVIDERS, action="append", help="side by side: only these")
    p.add_argument("--concurrency", type=int, action="append", help="side by side: only these C")
    p.add_argument("--no-peers", action="store_true", help="side by side: previz only")
    p.add_argument(
        "--gen",
        type=_gen_range,
        default=(40.0, 90.0),
        help="side by side: generation times, LOW,HIGH for U(LOW, HIGH) or one value for fixed (40,90)",
    )
    p.add_argument("--scale-child", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--download-child", nargs=4, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_sections(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only or ("side", "scale", "validate", "download", "limits"))
    takes = args.takes or (60 if args.quick else 200)
    scale_takes = 2000 if args.quick else args.scale_takes
    scale = args.scale or (0.01 if args.quick else 0.05)
    doc: dict[str, Any] = {"machine": machine(), "time_scale": scale}
    doc["scale_time_scale"] = args.scale_time_scale
    doc["generation_s"] = list(args.gen)
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        if "side" in only:
            pick = Pick(
                tuple(args.concurrency or (8, 20)),
                tuple(args.provider or PROVIDERS),
                not args.no_peers,
                args.gen,
            )
            rows = anyio.run(side_by_side, scale, takes, Path(tmp), pick)
            doc["side_by_side"] = [asdict(r) for r in rows]
    if "scale" in only:
        doc["scale"] = scale_run(args.scale_time_scale, scale_takes, 50)
    if "validate" in only:
        doc["validate"] = validate_time(2000 if args.quick else 10_000)
    if "download" in only:
        doc["download"] = download_bench(200_000_000, 1 if args.quick else 3)
    if "limits" in only:
        clips = 8 if args.quick else 24
        doc["download_limits"] = [
            download_limits(8_000_000, clips, mbps, (1, 2, 4, 8, 16)) for mbps in (16.0, None)
        ]
    doc["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.scale_child:
        base, scale, takes, conc, out = args.scale_child
        anyio.run(scale_child, base, float(scale), int(takes), int(conc), Path(out))
        return 0
    if args.download_child:
        kind, url, dest, out = args.download_child
        download_child(kind, url, Path(dest), Path(out))
        return 0
    doc = run_sections(args)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    print(report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
