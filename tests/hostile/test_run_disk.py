"""Disk per run and the slowest body (issue 22 point 9): ``--max-run-gb`` and the minimum rate.

Before: each download was capped (1 GiB) but not the run, so eight hostile downloads at once could
hold 8 GiB; a slowloris (a byte every 5 s under an honest Content-Length) held a download slot for
about 30 minutes. Now every byte a run's downloads write is taken from one budget, and a body
slower than 10 kB/s over 60 s is cut (here with a small window, so the test takes well under 1 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import anyio
import pytest

from runner.engine.diskcap import RunDiskCap, RunDiskCapReached
from runner.engine.download import Pacing, download
from runner.errors import TransientError
from runner.simulator.mp4 import base_clip
from tests.conftest import SimFactory
from tests.engine.helpers import ledger_rows, run_against, shot, write_manifest
from tests.hostile.server import HostileServer, hostile_server

pytestmark = pytest.mark.anyio

CLIP = len(base_clip())


def _no_parts(folder: Path) -> None:
    assert not list(folder.glob("*.part")), "a failed download leaves no .part"


async def _get(hostile: HostileServer, path: str, dest: Path, **limits: object) -> int:
    async with aiohttp.ClientSession() as session:
        done = await download(session, hostile.url(path), dest, provider="cdn", take="a#t01", **limits)  # type: ignore[arg-type]
    return done.bytes


async def test_a_slowloris_is_cut_at_the_minimum_rate_long_before_the_overall_timeout(tmp_path: Path) -> None:
    pacing = Pacing(min_bps=1_000, window_s=0.3)
    async with hostile_server(trickle_every=0.02) as hostile:  # 50 bytes/s, never silent for long
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"download too slow: \d+ bytes in 0 s \(under 1 kB/s\)"):
            await _get(hostile, "/clip/trickle.mp4", tmp_path / "a.mp4", pacing=pacing, read_timeout=5.0)
        elapsed = time.monotonic() - started
        assert await _get(hostile, "/clip/good.mp4", tmp_path / "b.mp4", pacing=pacing) == CLIP, (
            "fast is fine"
        )
    assert 0.3 <= elapsed < 1.5, f"cut after {elapsed:.2f} s"
    _no_parts(tmp_path)


async def test_the_runs_downloads_share_one_cap_and_a_failed_one_gives_its_bytes_back(tmp_path: Path) -> None:
    cap = RunDiskCap(int(CLIP * 2.5))
    async with hostile_server() as hostile:
        sizes = [await _get(hostile, "/clip/good.mp4", tmp_path / f"{i}.mp4", run_cap=cap) for i in (1, 2)]
        with pytest.raises(RunDiskCapReached, match="--max-run-gb"):
            await _get(hostile, "/clip/good.mp4", tmp_path / "3.mp4", run_cap=cap)
        assert cap.used == sum(sizes) == 2 * CLIP, "the third one's bytes came back with its .part"
        results: list[int] = []
        limit, many = int(CLIP * 2.5), 6
        cap = RunDiskCap(limit)

        async def one(i: int) -> None:
            try:
                results.append(await _get(hostile, "/clip/good.mp4", tmp_path / f"c{i}.mp4", run_cap=cap))
            except RunDiskCapReached:
                results.append(0)

        async with anyio.create_task_group() as tg:
            for i in range(many):
                tg.start_soon(one, i)
    saved = [size for size in results if size]
    assert len(results) == many and 1 <= len(saved) <= 2, results
    assert cap.used == sum(saved) <= limit, "at once, never more than the cap"
    _no_parts(tmp_path)


async def test_a_run_past_its_disk_cap_stops_submitting_and_the_rerun_saves_what_was_paid(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], concurrency=1)
    run_dir = tmp_path / "out" / "t"
    async with sim_factory() as sim:
        summary, _ = await run_against(sim, manifest, max_run_gb=CLIP * 2.5 / 1e9)
        first = sim.stats()["providers"]["runware"]["accepted"]
        assert summary.stopped == "disk cap" and first < 8, (summary.stopped, first)
        again, _ = await run_against(sim, manifest)
        billed = sim.stats()
    rows = ledger_rows(run_dir)
    unsaved = [r for r in rows if r["status"] != "done" and "--max-run-gb" in (r["failure_message"] or "")]
    assert unsaved and all(r["cost_usd"] > 0 for r in unsaved), "paid but not saved, with its cost"
    assert again.ok and billed["providers"]["runware"]["accepted"] == 8, "the rerun buys only the rest"
    assert len(list((run_dir / "a").glob("*.mp4"))) == 8
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(billed["billed_usd"])
