"""Issue 22 (1, 3, 5): a provider outage after the provider accepted (and will bill) a task.

Each run goes through the real adapters to the honest simulator behind a hostile front
(:mod:`tests.hostile.front`) that spoils polls, cancels or submit answers; the money is audited
from the simulator's own stats: what it billed, against the ledger, against the budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from runner.cli.run import RunOptions, Wiring, prepare, run_takes
from runner.clock import ScaledClock
from runner.engine.tally import Summary
from runner.providers.registry import build_provider
from runner.simulator import Simulator
from runner.store.sqlite import Journal
from tests.conftest import SimFactory
from tests.engine.helpers import KEY_VARS, URL_VARS, ledger_rows, shot, write_manifest
from tests.hostile.front import Front, hostile_front

pytestmark = pytest.mark.anyio

#: the runner's clock and the simulator's run this much faster than real time (an outage of an
#: hour of polls lasts about seven real seconds)
SCALE = 0.002


async def _run(
    sim: Simulator, front: Front, manifest: Path, *, wiring: Wiring | None = None, **options: Any
) -> tuple[Summary, Path]:
    """One ``previz run`` in-process, every provider reached through ``front``."""
    env = {}
    for name in ("aimlapi", "runware", "runway"):
        env[KEY_VARS[name]], env[URL_VARS[name]] = sim.keys[name], front.base_url
    prepared = prepare(RunOptions(manifest=manifest, environ=env, clock=ScaledClock(SCALE), **options))
    async with aiohttp.ClientSession() as session:
        providers = {name: build_provider(config, session) for name, config in prepared.configs.items()}
        summary = await run_takes(
            prepared,
            providers,
            session=session,
            keys=[c.api_key.reveal() for c in prepared.configs.values()],
            wiring=wiring or Wiring(),
            configs=prepared.configs,
        )
    return summary, prepared.run_dir


def _ledger(run_dir: Path) -> float:
    return round(sum(float(r["cost_usd"]) for r in ledger_rows(run_dir)), 6)


def _journal(run_dir: Path) -> dict[str, Any]:
    journal = Journal.open(run_dir, readonly=True)
    try:
        return {r.label: r for r in journal.records().values()}
    finally:
        journal.close()


async def _billed(sim: Simulator) -> float:
    """What the simulator billed once every task it has ends (each bills as it ends, polled or not)."""
    async with aiohttp.ClientSession() as session, session.get(sim.base_url + "/_sim/tasks") as resp:
        times = await resp.json()
    ends = [t["end_at"] for t in times["tasks"]]
    assert None not in ends, "every task has its end decided (none waits for a Runway slot)"
    await anyio.sleep(max(0.0, max(ends, default=0.0) - times["now"]) * SCALE + 0.05)
    stats = sim.stats()
    assert not any(p["in_flight"] for p in stats["providers"].values())
    return float(stats["billed_usd"])


def _most_tasks_of_a_take(sim: Simulator) -> int:
    return max(sim.stats()["submissions_by_take"].values(), default=0)


# -- 1. polls that keep failing: the take keeps its cost and its task ----------------------------


@pytest.mark.parametrize("spoil", ["5xx", "html", "huge", "endless"])
async def test_polls_failing_for_good_keep_the_cost_and_the_budget_holds(
    sim_factory: SimFactory, tmp_path: Path, spoil: str
) -> None:
    """Runway, 6 takes of $0.25 under a $0.60 budget, every poll and cancel spoiled.

    Before: each take failed at $0 after 40 polls, freeing its reservation, so all six were sent
    ($1.50 billed, ledger $0.00). Now each gives-up take is charged and flagged, the budget stops
    the run after two, and a rerun polls those two by id: nothing is sent twice.
    """
    manifest = write_manifest(tmp_path, [shot("s", "runway", takes=6)], budget_usd=0.60, concurrency=2)
    async with sim_factory(time_scale=SCALE) as sim:
        async with hostile_front(sim.base_url, polls=spoil, cancels="5xx") as front:
            summary, run_dir = await _run(sim, front, manifest)
            billed, ledger = await _billed(sim), _ledger(run_dir)
            rows = ledger_rows(run_dir)
            figures = f"billed ${billed:.2f}, ledger ${ledger:.2f}, budget $0.60"
            assert billed == pytest.approx(0.50), f"two tasks sent and billed ({figures})"
            assert ledger >= billed - 1e-9, f"the ledger covers the bill ({figures})"
            assert ledger <= 0.60 + 1e-9
            assert [r["flags"] for r in rows if r["status"] == "failed"] == ["may_bill", "may_bill"]
            assert all("the next run polls task" in r["failure_message"] for r in rows)
            kept = [r for r in _journal(run_dir).values() if r.state == "submitted"]
            assert len(kept) == 2 and all(r.handle for r in kept), "their task ids are kept"
            assert summary.stopped is not None and summary.stopped.value == "budget"

            front.heal()
            await _run(sim, front, manifest)
        assert _most_tasks_of_a_take(sim) == 1, "the rerun polled the two tasks; it sent none again"
        assert await _billed(sim) == pytest.approx(0.50)
        rows = ledger_rows(run_dir)
        assert _ledger(run_dir) == pytest.approx(0.50), "the clips fetched later carry 0"
        done = [r for r in rows if r["status"] == "done"]
        assert len(done) == 2 and all("paid_earlier" in r["flags"] for r in done)


async def test_a_cancel_that_gets_through_still_leaves_the_cost_in_the_ledger(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Polls spoiled, the cancel passed on: Runway's DELETE also deletes a task that finished
    (and billed) during the outage, so a confirmed cancel proves nothing: charged all the same."""
    manifest = write_manifest(tmp_path, [shot("s", "runway", takes=2)], concurrency=2)
    async with sim_factory(time_scale=SCALE) as sim, hostile_front(sim.base_url, polls="5xx") as front:
        summary, run_dir = await _run(sim, front, manifest)
        billed, ledger = await _billed(sim), _ledger(run_dir)
    assert front.passed["cancel"] == 2, "each task was cancelled (or deleted) at the provider"
    assert billed == pytest.approx(0.50)
    assert ledger == pytest.approx(billed), f"billed ${billed:.2f}, ledger ${ledger:.2f}"
    rows = ledger_rows(run_dir)
    assert all("cancelled at the provider" in r["failure_message"] for r in rows)
    assert {r.state for r in _journal(run_dir).values()} == {"failed"}, "nothing left to poll"
    assert summary.failed == 2


async def test_one_refused_runware_batch_fails_none_of_its_tasks(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Runware polls every task in one request; one request refused as a whole (HTTP 400, an error
    about no task in particular) used to fail every task riding in it, at $0, as bad input."""
    manifest = write_manifest(tmp_path, [shot("s", "runware", takes=3)], concurrency=3)
    spoils: dict[str, Any] = {"polls": "400", "poll_budget": 1}
    async with sim_factory(time_scale=SCALE) as sim, hostile_front(sim.base_url, **spoils) as front:
        summary, run_dir = await _run(sim, front, manifest)
        billed, ledger = await _billed(sim), _ledger(run_dir)
    assert front.spoiled["poll"] == 1
    assert (summary.done, summary.failed) == (3, 0), f"billed ${billed:.4f}, ledger ${ledger:.4f}"
    assert ledger == pytest.approx(billed) and billed == pytest.approx(3 * 0.3042)


async def test_a_retry_after_beyond_the_poll_budget_is_waited_out_as_far_as_the_take_may(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Once the task is seen running, every poll is answered 429 with Retry-After 2 h (the poll
    budget is 1 h). Before: the take failed at that first 429, at $0. Now it waits as long as its
    running-time timeout (here 10 minutes) allows, looks once more, and ends as a lost task."""
    manifest = write_manifest(tmp_path, [shot("s", "runway")])
    wiring = Wiring(take_timeout=600.0)
    spoils: dict[str, Any] = {"polls": "429", "cancels": "5xx", "retry_after": 7200, "from_running": True}
    async with sim_factory(time_scale=SCALE) as sim:
        async with hostile_front(sim.base_url, **spoils) as front:
            clock = ScaledClock(SCALE)
            started = clock.now()
            _, run_dir = await _run(sim, front, manifest, wiring=wiring)
            took = clock.now() - started
            billed, ledger = await _billed(sim), _ledger(run_dir)
            (row,) = ledger_rows(run_dir)
            assert front.spoiled["poll"] == 2, "the first 429, then one last look after the wait"
            assert 500.0 <= took < 7200.0, f"waited {took:.0f} s: the limit, not the Retry-After"
            assert (row["cost_usd"], row["flags"]) == (0.25, "may_bill"), f"billed ${billed:.2f}"
            assert "Retry-After" in row["failure_message"]
            assert ledger >= billed
            front.heal()
            await _run(sim, front, manifest)
        assert _most_tasks_of_a_take(sim) == 1, "the rerun polled the task"
        assert [r["status"] for r in ledger_rows(run_dir)] == ["failed", "done"]


# -- 5. Runware: a submit whose 2xx answer cannot be read ------------------------------------------


@pytest.mark.parametrize("spoil", ["html", "huge", "endless"])
async def test_a_runware_submit_answered_unreadably_is_asked_about_and_rejoined(
    sim_factory: SimFactory, tmp_path: Path, spoil: str
) -> None:
    """Every submit lands but its 200 answer cannot be read. Before: sent 8 times, then written
    off at $0 (the task billed all the same), and a rerun's new taskUUID paid a second time."""
    manifest = write_manifest(tmp_path, [shot("s", "runware")])
    async with sim_factory(time_scale=SCALE) as sim, hostile_front(sim.base_url, submits=spoil) as front:
        summary, run_dir = await _run(sim, front, manifest)
        billed, ledger = await _billed(sim), _ledger(run_dir)
    (row,) = ledger_rows(run_dir)
    assert (row["status"], summary.done) == ("done", 1), f"billed ${billed:.4f}, ledger ${ledger:.4f}"
    assert front.asked[row["task_id"]] >= 1, "getResponse was asked about that very taskUUID"
    assert ledger == pytest.approx(billed) and billed == pytest.approx(0.3042)
    assert _most_tasks_of_a_take(sim) == 1


async def test_a_runware_submit_of_unknown_fate_is_uncertain_and_resent_with_the_same_task_uuid(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The submit lands, its answers cannot be read and the look-up fails too: charged, flagged
    ``uncertain``, and the rerun resends the same taskUUID (Runware answers conflictTaskUUID: it
    is polled), never a new one."""
    manifest = write_manifest(tmp_path, [shot("s", "runware")])
    async with sim_factory(time_scale=SCALE) as sim:
        async with hostile_front(sim.base_url, submits="html", polls="5xx") as front:
            _, run_dir = await _run(sim, front, manifest)
            (row,) = ledger_rows(run_dir)
            billed, ledger = await _billed(sim), _ledger(run_dir)
            assert (row["failure_kind"], row["flags"]) == ("uncertain", "uncertain"), row["failure_message"]
            assert ledger >= billed - 1e-9, f"billed ${billed:.4f}, ledger ${ledger:.4f}"
            (kept,) = _journal(run_dir).values()
            assert (kept.state, kept.handle) == ("submitting", row["task_id"])
            front.heal()
            summary, _ = await _run(sim, front, manifest)
        assert summary.done == 1
        assert _most_tasks_of_a_take(sim) == 1, "one task for the take, over both runs"
        assert await _billed(sim) == pytest.approx(0.3042)
        assert _ledger(run_dir) == pytest.approx(0.3042), "charged once: the clip's row says paid_earlier"


async def test_a_runware_submit_that_provably_never_landed_fails_unbilled(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Submits never reach the simulator, answered 200 HTML: getResponse says there is no such
    task, so the attempt fails at $0 (no flag) and a rerun may send a new one."""
    manifest = write_manifest(tmp_path, [shot("s", "runware")])
    spoils: dict[str, Any] = {"submits": "html", "drop_submits": True}
    async with sim_factory(time_scale=SCALE) as sim, hostile_front(sim.base_url, **spoils) as front:
        _, run_dir = await _run(sim, front, manifest)
        billed = await _billed(sim)
    (row,) = ledger_rows(run_dir)
    assert front.asked[row["task_id"]] == 1, "asked once about that taskUUID"
    assert "the provider has no task" in row["failure_message"]
    assert (row["cost_usd"], row["flags"], billed) == (0.0, "", 0.0)
    assert [r.state for r in _journal(run_dir).values()] == ["failed"]
