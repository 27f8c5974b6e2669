"""Issue 10 in a run: pre-flight limits, failures worth a new task, a provider nobody can reach."""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import pytest
from rich.console import Console

from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.events import Event, EventKind
from runner.errors import ConfigError
from tests.conftest import TEST_TIME_SCALE, SimFactory
from tests.engine.helpers import KEY_VARS, URL_VARS, ledger_rows, run_against, shot, sim_env, write_manifest

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("provider", ["aimlapi", "runware", "runway"])
async def test_a_refused_key_is_exit_2_before_anything_is_sent(
    sim_factory: SimFactory, tmp_path: Path, provider: str
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", provider, takes=3)])
    async with sim_factory() as sim:
        env = {**sim_env(sim), KEY_VARS[provider]: "wrong-key-0123456789"}
        started = time.monotonic()
        with pytest.raises(ConfigError) as refused:
            await execute(prepare(RunOptions(manifest=manifest, environ=env)))
        took = time.monotonic() - started
        stats = sim.stats()["providers"][provider]
    assert took < 5.0
    assert stats["submissions"] == 0
    assert KEY_VARS[provider] in str(refused.value)
    assert "wrong-key-0123456789" not in str(refused.value)


async def test_runway_tier_of_2_caps_the_slots(sim_factory: SimFactory, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=5)], concurrency=8)
    events: list[Event] = []
    async with sim_factory(runway_concurrency=2) as sim:
        summary, _ = await run_against(sim, manifest, events=events)
        stats = sim.stats()["providers"]["runway"]
    assert summary.done == 5
    assert stats["max_in_flight"] <= 2, "no task waited THROTTLED, committed and billed later"
    warnings = [e.message for e in events if e.kind is EventKind.WARNING]
    assert any("concurrency 8 is above the tier's 2" in w for w in warnings), warnings


async def test_a_daily_cap_of_3_submits_3_and_leaves_the_rest(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    from runner.cli.cmd_run import _run_exit
    from runner.cli.common import EXIT_STOPPED  # the exit code the CLI picks for this summary

    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=5)], concurrency=2)
    events: list[Event] = []
    async with sim_factory(runway_daily_limit=3) as sim:
        summary, _ = await run_against(sim, manifest, events=events)
        stats = sim.stats()["providers"]["runway"]
    assert (summary.done, summary.not_started) == (3, 2)
    assert stats["submissions"] == 3, "never a submit past the cap"
    assert summary.closed == {"runway": "daily limit"}
    assert any("takes not started (daily limit)" in e.message for e in events if e.kind is EventKind.WARNING)
    said = io.StringIO()
    assert _run_exit(summary, Console(file=said)) == EXIT_STOPPED
    assert "left for tomorrow's quota" in said.getvalue()


async def test_an_internal_failure_is_retried_with_a_new_task(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=2)])
    async with sim_factory(runway_fail_first=1, runway_failure_code="INTERNAL") as sim:
        summary, run_dir = await run_against(sim, manifest)
        stats = sim.stats()["providers"]["runway"]
    assert (summary.done, summary.failed, summary.retried) == (2, 0, 2)
    rows = ledger_rows(run_dir)
    failed = [r for r in rows if r["status"] == "failed"]
    done = [r for r in rows if r["status"] == "done"]
    assert [r["failure_kind"] for r in failed] == ["provider", "provider"]
    assert all(r["cost_usd"] == 0 for r in failed), "Runway bills a failed task nothing"
    assert all(r["attempts"] == 2 and "retried" in r["flags"] for r in done)
    assert stats["accepted"] == 4
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(stats["billed_usd"])


async def test_a_safety_failure_is_moderation_and_not_retried(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runway")])
    async with sim_factory(runway_fail_first=1, runway_failure_code="SAFETY.INPUT.TEXT") as sim:
        summary, run_dir = await run_against(sim, manifest)
        stats = sim.stats()["providers"]["runway"]
    assert (summary.done, summary.failed, summary.retried) == (0, 1, 0)
    (row,) = ledger_rows(run_dir)
    assert row["failure_kind"] == "moderation"
    assert stats["accepted"] == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_an_unreachable_provider_is_given_up_and_the_others_finish(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Connection refused for 60 s (scaled clock: 0.6 s) stops submits to it; the run ends, exit 1."""
    shots = [shot("a", "aimlapi", takes=3), shot("b", "runware", takes=2)]
    manifest = write_manifest(tmp_path, shots)
    events: list[Event] = []
    async with sim_factory() as sim:
        env = {**sim_env(sim), URL_VARS["aimlapi"]: f"http://127.0.0.1:{_closed_port()}"}
        options = RunOptions(manifest=manifest, environ=env, clock=ScaledClock(TEST_TIME_SCALE))
        started = time.monotonic()
        summary = await execute(prepare(options), events.append)
        took = time.monotonic() - started
    assert took < 90
    assert summary.done == 2, "the other provider's takes finished"
    assert summary.not_started == 3 and not summary.ok
    assert summary.closed["aimlapi"].startswith("provider unreachable")
    warnings = [e.message for e in events if e.kind is EventKind.WARNING]
    assert any("not submitted: provider unreachable" in w for w in warnings), warnings
