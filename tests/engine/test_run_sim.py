"""`previz run` end to end against the simulator over loopback (issue: provider adapters + engine)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from runner.engine.events import Event, EventKind
from runner.engine.retrying import Step
from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.engine.helpers import ledger_rows, run_against, shot, write_manifest

pytestmark = pytest.mark.anyio


def _assert_verified(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        clip = run_dir / row["output"]
        data = clip.read_bytes()
        assert data[4:8] == b"ftyp"
        assert len(data) == row["bytes"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert not clip.with_name(clip.name + ".part").exists()


@pytest.mark.parametrize("provider", ["aimlapi", "runware", "runway"])
async def test_each_provider_end_to_end(sim: Simulator, tmp_path: Path, provider: str) -> None:
    manifest = write_manifest(
        tmp_path, [shot("harbor", provider, takes=2), shot("cliff", provider, seeds=[7])]
    )
    summary, run_dir = await run_against(sim, manifest)
    assert (summary.done, summary.failed) == (3, 0)
    rows = ledger_rows(run_dir)
    assert [r["status"] for r in rows] == ["done"] * 3
    assert {r["seed"] for r in rows} >= {7}
    assert all(r["cost_source"] == "reported" for r in rows)
    _assert_verified(run_dir, rows)
    stats = sim.stats()
    # the ledger equals the bill, and nothing was paid twice
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(stats["providers"][provider]["billed_usd"])
    assert all(count == 1 for count in stats["submissions_by_take"].values())
    assert (run_dir / "harbor").is_dir()


async def test_rerun_skips_done_takes(sim: Simulator, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=3)])
    first, run_dir = await run_against(sim, manifest)
    assert first.done == 3
    before = sim.stats()["providers"]["runware"]["submissions"]
    second, _ = await run_against(sim, manifest)
    assert (second.done, second.skipped) == (0, 3)
    assert sim.stats()["providers"]["runware"]["submissions"] == before
    assert len(ledger_rows(run_dir)) == 3


async def test_max_in_flight_never_above_cap(sim: Simulator, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        [shot(f"s{i}", p, takes=4) for i, p in enumerate(["runware", "aimlapi", "runway"])],
        concurrency=2,
    )
    summary, _ = await run_against(sim, manifest)
    assert summary.done == 12
    for provider in ("runware", "aimlapi", "runway"):
        peak = sim.stats()["providers"][provider]["max_in_flight"]
        assert peak <= 2, provider
        assert peak == 2, f"{provider}: the cap was never used in full (peak {peak})"


async def test_flaky_profile_finishes_every_take(sim_factory: SimFactory, tmp_path: Path) -> None:
    shots = [shot(f"s{i}", p, takes=3) for i, p in enumerate(["runware", "aimlapi", "runway"] * 2)]
    manifest = write_manifest(tmp_path, shots, concurrency=3)
    events: list[Event] = []
    async with sim_factory("flaky", seed=11) as sim:
        summary, run_dir = await run_against(sim, manifest, events=events)
        stats = sim.stats()
    assert (summary.done, summary.failed) == (18, 0)
    assert sum(stats["faults"].values()) > 0, "the flaky profile injected no fault"
    retries = [e.retry for e in events if e.kind is EventKind.RETRYING]
    assert any(r is not None and r.step is Step.POLL for r in retries), "poll retries are events"
    rows = ledger_rows(run_dir)
    _assert_verified(run_dir, rows)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(stats["billed_usd"])


async def test_moderation_failure_is_recorded_with_its_kind(sim: Simulator, tmp_path: Path) -> None:
    shots = [shot("ok", "runway"), shot("bad", "runway", prompt="a [sim:moderate] dragon")]
    summary, run_dir = await run_against(sim, write_manifest(tmp_path, shots))
    assert (summary.done, summary.failed, summary.ok) == (1, 1, False)
    bad = next(r for r in ledger_rows(run_dir) if r["shot"] == "bad")
    assert (bad["status"], bad["failure_kind"]) == ("failed", "moderation")
    assert bad["output"] is None


async def test_expired_url_is_refreshed(sim_factory: SimFactory, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("x", "aimlapi", takes=2), shot("y", "runway", takes=2)])
    async with sim_factory("clean", expire=1.0) as sim:
        summary, run_dir = await run_against(sim, manifest)
        stats = sim.stats()
    assert summary.done == 4
    assert stats["faults"].get("expire", 0) >= 4
    _assert_verified(run_dir, ledger_rows(run_dir))


@pytest.mark.parametrize("provider", ["aimlapi", "runway"])
async def test_submit_timeout_after_reaching_server_is_not_resent(
    sim_factory: SimFactory, tmp_path: Path, provider: str
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", provider, takes=2)])
    async with sim_factory("clean", submit_lost_answer=1.0, hang_seconds=3.0) as sim:
        summary, run_dir = await run_against(sim, manifest, request_timeout=0.3)
        stats = sim.stats()
    assert summary.failed == 2
    assert stats["providers"][provider]["submissions"] == 2
    assert sorted(stats["submissions_by_take"].values()) == [1, 1]
    rows = ledger_rows(run_dir)
    assert {r["failure_kind"] for r in rows} == {"uncertain"}
    assert all("uncertain" in r["flags"] for r in rows)


async def test_runware_resend_meets_conflict_and_is_polled(sim_factory: SimFactory, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=2)])
    events: list[Event] = []
    async with sim_factory("clean", submit_lost_answer=1.0, hang_seconds=3.0) as sim:
        summary, run_dir = await run_against(sim, manifest, request_timeout=0.3, events=events)
        stats = sim.stats()
    assert summary.done == 2
    assert stats["providers"]["runware"]["accepted"] == 2
    assert stats["providers"]["runware"]["billed_usd"] == pytest.approx(2 * 0.3042)
    assert any(e.kind is EventKind.WARNING and "already submitted" in e.message for e in events)
    assert all("resumed" in r["flags"] for r in ledger_rows(run_dir))


async def test_two_hundred_runware_takes_poll_in_batches(sim: Simulator, tmp_path: Path) -> None:
    shots = [shot(f"s{i:02d}", "runware", takes=10) for i in range(20)]
    summary, run_dir = await run_against(sim, write_manifest(tmp_path, shots, concurrency=40))
    assert summary.done == 200
    runware = sim.stats()["providers"]["runware"]
    assert runware["max_in_flight"] <= 40
    assert runware["poll_requests"] * 4 < runware["polls"], runware
    assert len(ledger_rows(run_dir)) == 200
