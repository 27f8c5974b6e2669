"""How the engine behaves under pushback, limits and failures, against the simulator over loopback.

Sim and engine clock both run at TEST_TIME_SCALE (a 60 s generation lasts 0.6 s); every timing
assertion is in the engine's clock time (recorded at the Provider seam), never in wall time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner.cli.progress import Progress
from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.collect import CollectOptions, Downloader
from runner.engine.core import Engine, EngineOptions
from runner.engine.download import Downloaded
from runner.engine.events import Bus, Event, EventKind
from runner.engine.lanes import LaneOptions
from runner.engine.retrying import Backoff, RetryPolicy, Step
from runner.engine.tally import Summary
from runner.errors import ExpiredURLError
from runner.manifest.images import ImageEncoder
from runner.manifest.takes import Take
from runner.providers.base import Provider, SubmitRequest, Submitted, TaskState, TaskStatus
from runner.reports.runlog import REDACTED, Redactor, RunLog
from runner.simulator import Simulator
from runner.store.group import AsyncJournal
from tests.conftest import TEST_TIME_SCALE, SimFactory
from tests.engine.direct import run_engine
from tests.engine.fakes import (
    FakeProvider,
    NoDownloads,
    VirtualClock,
    all_running,
    driven,
    moderated,
    open_journal,
    poll_gaps,
)
from tests.engine.helpers import ledger_rows, run_against, shot, sim_env, write_manifest
from tests.providers.helpers import make_take

pytestmark = pytest.mark.anyio

#: Runway asks for 5 s between two polls of one task.
RUNWAY_MIN_GAP = 5.0
EPS = 1e-6


# -- (a) 429 shrinks the slots, and the run still finishes ------------------------------------------


async def test_429_shrinks_slots_and_every_take_still_finishes(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("surf", "aimlapi", takes=5)], concurrency=4)
    events: list[Event] = []
    async with sim_factory(aiml_concurrency=2) as sim:
        summary, run_dir = await run_against(sim, manifest, events=events)
        aiml = sim.stats()["providers"]["aimlapi"]
    assert (summary.done, summary.failed, summary.not_started) == (5, 0, 0)
    assert aiml["max_in_flight"] <= 2
    assert aiml["rejected"] > 0, "the provider pushed back with 429"
    assert aiml["accepted"] == 5, "every take registered exactly once"
    retries = [e for e in events if e.kind is EventKind.RETRYING]
    assert retries and all(e.retry is not None and e.retry.step is Step.SUBMIT for e in retries)
    assert len(ledger_rows(run_dir)) == 5
    # Slots shrank: the fifth take did not take the first slot to come free (as it would at a
    # fixed limit of 4), it waited until the takes that met 429s were through as well.
    fifth = next(
        i for i, e in enumerate(events) if e.kind is EventKind.SUBMITTING and e.take and e.take.index == 5
    )
    finished_before = sum(e.kind is EventKind.FINISHED for e in events[:fifth])
    assert finished_before >= 2, f"the fifth take started after {finished_before} takes had finished"


# -- (b) Runway: never more often than every 5 s per task -----------------------------------------


async def test_runway_tasks_are_never_polled_more_often_than_every_5_s(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("pier", "runway", takes=4)], concurrency=4)
    async with sim_factory() as sim:
        run = await run_engine(sim, manifest)
    assert run.summary.done == 4
    recorded = run.providers["runway"]
    gaps = poll_gaps(recorded.polls)
    # progress readings aim the last poll at the end, so a task sees 3-4 polls, not 6+
    assert len(gaps) == 4 and all(len(g) >= 2 for g in gaps.values()), "several polls of every task"
    shortest = min(min(g) for g in gaps.values())
    assert shortest >= RUNWAY_MIN_GAP - EPS, f"a task was polled {shortest:.3f} s after its last poll"
    assert all(len(handles) == 1 for _, handles in recorded.polls), "Runway takes one task per poll"


async def run_fake(
    tmp_path: Path,
    clock: VirtualClock,
    provider: Provider,
    takes: list[Take],
    downloader: Downloader,
    lanes: Mapping[str, LaneOptions],
    **options: Any,
) -> tuple[Summary, AsyncJournal]:
    """The takes through an engine over one in-process provider, on a driven virtual clock."""
    journal, records = open_journal(tmp_path, takes)
    async with driven(clock):
        engine = fake_engine(
            provider, journal, downloader, EngineOptions(lanes=lanes, clock=clock, **options)
        )
        summary = await engine.run(takes, records)
    return summary, journal


def fake_engine(
    provider: Provider, journal: AsyncJournal, downloader: Downloader, options: EngineOptions
) -> Engine:
    """An engine over one in-process provider, as ``runner.cli.run`` builds one (for virtual-clock tests)."""
    return Engine({provider.name: provider}, downloader=downloader, encoder=ImageEncoder(), journal=journal,
                  bus=Bus(), options=options)  # fmt: skip


async def test_a_task_falling_due_early_does_not_drag_a_runway_poll_forward(tmp_path: Path) -> None:
    """Two takes submitted 4.7 s apart (virtual time): B's first poll falls due 0.3 s before A's."""
    clock = VirtualClock()
    a, b = make_take("runway", shot="a"), make_take("runway", shot="b")

    def answer(call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        if clock.now() >= 40.0:  # both end by moderation: no download needed
            return {h: moderated(h) for h in handles}
        return all_running(call, handles)

    provider = FakeProvider(
        clock,
        answer=answer,
        name="runway",
        max_poll_batch=1,
        min_poll_interval=RUNWAY_MIN_GAP,
        resend_safe=False,
        submit_latency=lambda request: 4.5 if request.take.shot == "b" else 0.0,
    )
    summary, _ = await run_fake(
        tmp_path, clock, provider, [a, b], NoDownloads(), lanes={"runway": LaneOptions(concurrency=2)}
    )
    assert summary.failed == 2
    gaps = poll_gaps(provider.polls)
    shortest = min(min(g) for g in gaps.values())
    assert shortest >= RUNWAY_MIN_GAP - EPS, f"a task was polled {shortest:.3f} s after its last poll"


# -- (c) the take timeout counts RUNNING time only --------------------------------------------------

#: One Runway generation of a 5 s clip, simulated seconds: (40 + 4 × 5) × (0.85 … 1.15), of which
#: the first 15 % is PENDING (tasks.py). RUNNING is at most 58.7 s; seen through polls at most
#: 10 s apart it measures under 69 s (the rest is margin for a busy machine). The third take
#: waits THROTTLED behind two whole generations: at least 3 × 51 s from submit to its end.
TAKE_TIMEOUT = 100.0


async def test_take_timeout_counts_running_time_not_time_throttled(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("queue", "runway", takes=3)], concurrency=3)
    async with sim_factory(runway_concurrency=1) as sim:
        run = await run_engine(sim, manifest, take_timeout=TAKE_TIMEOUT)
        runway = sim.stats()["providers"]["runway"]
    assert (run.summary.done, run.summary.failed) == (3, 0)
    assert runway["max_in_flight"] == 3, "all three were submitted; two waited THROTTLED"
    generation = sorted(r["generation_s"] for r in ledger_rows(run.run_dir))
    assert generation[-1] > TAKE_TIMEOUT, "the last take spent longer than the timeout in all"
    assert generation[-1] > 150.0, "…having waited THROTTLED for two generations before its own"


async def test_a_take_running_longer_than_the_timeout_fails_as_timeout(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # AIML: no progress to aim at the end with, so polls keep coming while the task runs (a Runway
    # task whose progress moves is polled at its extrapolated end and may be found done instead)
    manifest = write_manifest(tmp_path, [shot("slow", "aimlapi")], concurrency=1)
    async with sim_factory() as sim:
        run = await run_engine(sim, manifest, take_timeout=10.0)
    assert (run.summary.done, run.summary.failed) == (0, 1)
    (row,) = ledger_rows(run.run_dir)
    assert (row["status"], row["failure_kind"]) == ("failed", "timeout")
    assert "still running" in row["failure_message"]
    assert row["output"] is None


# -- (d) a bad key stops new submissions to that provider at once ------------------------------------


async def test_auth_failure_stops_that_provider_and_the_others_go_on(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """A key refused mid-run (revoked at 3 a.m.; `previz run`'s pre-flight catches it at the start)."""
    shots = [shot("bay", "runway", takes=4), shot("dune", "runware", takes=2)]
    manifest = write_manifest(tmp_path, shots, concurrency=1)
    async with sim_factory() as sim:
        run = await run_engine(sim, manifest, keys={"runway": "key_live_wrong0000000000000"})
        stats = sim.stats()["providers"]
    summary, events = run.summary, run.events
    prepared = run
    assert (summary.done, summary.failed, summary.not_started) == (2, 1, 3)
    assert not summary.ok
    rows = ledger_rows(prepared.run_dir)
    (bad,) = [r for r in rows if r["provider"] == "runway"]
    assert (bad["status"], bad["failure_kind"]) == ("failed", "auth")
    assert sorted(r["status"] for r in rows if r["provider"] == "runware") == ["done", "done"]
    runway_submits = [
        e for e in events if e.kind is EventKind.SUBMITTING and e.take and e.take.provider == "runway"
    ]
    assert len(runway_submits) == 1, "one refused submit, then nothing more was sent"
    assert stats["runway"]["accepted"] == 0 and stats["runway"]["billed_usd"] == 0
    assert stats["runware"]["accepted"] == 2
    warnings = [e.message for e in events if e.kind is EventKind.WARNING]
    assert any("runway: 3 takes not started" in w and "auth" in w for w in warnings), warnings


async def test_auth_failure_stops_takes_already_waiting_to_submit(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("bay", "runway", takes=5)], concurrency=3)
    # one request per 10 s of engine time: the 401 is back long before the second take's turn
    lanes = {"runway": LaneOptions(concurrency=3, requests_per_second=0.1, burst=1)}
    async with sim_factory() as sim:
        run = await run_engine(sim, manifest, lanes=lanes, keys={"runway": "key_live_wrong0000000000000"})
    submits = run.providers["runway"].submits
    assert len(submits) == 1, f"{len(submits)} submits sent after the provider refused the key"
    assert (run.summary.failed, run.summary.not_started) == (1, 4)


# -- a provider that stays unreachable for polls --------------------------------------------------


async def test_polls_that_never_get_through_fail_the_take_not_the_run(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("reef", "aimlapi")], concurrency=1)
    lanes = {
        "aimlapi": LaneOptions(
            concurrency=1, poll_retry=RetryPolicy(40, 3600.0, Backoff(base=0.01, cap=0.01, jitter=0.0))
        )
    }
    async with sim_factory(reset=1.0) as sim:  # every poll's connection is dropped
        run = await run_engine(sim, manifest, lanes=lanes)
    assert (run.summary.done, run.summary.failed) == (0, 1)
    (row,) = ledger_rows(run.run_dir)
    assert row["failure_kind"] == "provider"


# -- (e) --retry-failed -----------------------------------------------------------------------------


async def test_retry_failed_resubmits_a_moderated_take_as_a_new_attempt(
    sim: Simulator, tmp_path: Path
) -> None:
    shots = [shot("calm", "runware"), shot("storm", "runware", prompt="a [sim:moderate] storm")]
    manifest = write_manifest(tmp_path, shots)

    first, run_dir = await run_against(sim, manifest)
    assert (first.done, first.failed) == (1, 1)
    assert sim.stats()["providers"]["runware"]["accepted"] == 2

    plain, _ = await run_against(sim, manifest)
    assert (plain.skipped, plain.done, plain.failed) == (2, 0, 0), "a moderated take is not repeated"
    assert sim.stats()["providers"]["runware"]["accepted"] == 2

    retried, _ = await run_against(sim, manifest, retry_failed=True)
    assert (retried.skipped, retried.failed) == (1, 1), "only the failed take is retried"
    stats = sim.stats()
    assert stats["providers"]["runware"]["accepted"] == 3
    assert sorted(stats["submissions_by_take"].values()) == [1, 1, 1], "a new taskUUID, not a resend"
    storm = [r for r in ledger_rows(run_dir) if r["shot"] == "storm"]
    assert len(storm) == 2
    assert storm[0]["task_id"] != storm[1]["task_id"]
    assert set(stats["submissions_by_take"]) >= {r["task_id"] for r in storm}
    assert [r["failure_kind"] for r in storm] == ["moderation", "moderation"]


# -- (f) progress in plain mode -------------------------------------------------------------------


async def test_plain_progress_prints_lines_and_counts_that_match_the_summary(
    sim: Simulator, tmp_path: Path
) -> None:
    shots = [shot("field", "runware", takes=3), shot("fire", "aimlapi", prompt="[sim:moderate] blaze")]
    manifest = write_manifest(tmp_path, shots)
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=False, width=200), every=3600.0)
    prepared = prepare(
        RunOptions(manifest=manifest, environ=sim_env(sim), clock=ScaledClock(TEST_TIME_SCALE))
    )
    with progress.live():
        summary = await execute(prepared, progress)
    lines = out.getvalue().splitlines()
    assert (summary.done, summary.failed) == (3, 1)
    assert sum(line.startswith("submitted ") for line in lines) == 4
    assert sum(line.startswith("done ") for line in lines) == summary.done
    assert sum(line.startswith("failed ") for line in lines) == summary.failed
    assert any(line.startswith("failed ") and "fire#t01" in line and "moderation" in line for line in lines)
    assert not any("\x1b[" in line for line in lines), "no terminal codes when not on a terminal"
    c = progress.counts
    assert (c.total, c.done, c.failed, c.skipped) == (4, summary.done, summary.failed, summary.skipped)
    assert (c.in_flight, c.downloading) == (0, 0)
    assert c.spent_usd == pytest.approx(summary.spent_usd)
    assert f"{c.done}/{c.total} done · {c.failed} failed" in progress.summary_line()


# -- (g) run.log ----------------------------------------------------------------------------------


async def test_run_log_is_json_per_line_and_holds_no_key(sim: Simulator, tmp_path: Path) -> None:
    shots = [shot("glow", "runway"), shot("ash", "runware", prompt="[sim:moderate] smoke")]
    manifest = write_manifest(tmp_path, shots)
    summary, run_dir = await run_against(sim, manifest)
    text = (run_dir / "run.log").read_text(encoding="utf-8")
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    finished = {r["take"]: r for r in records if r["event"] == "finished"}
    assert finished["glow#t01"]["status"] == "done"
    assert (finished["ash#t01"]["status"], finished["ash#t01"]["failure_kind"]) == ("failed", "moderation")
    assert summary.done == 1
    for key in sim.keys.values():
        assert key not in text


def test_run_log_redacts_a_key_that_reaches_it(tmp_path: Path) -> None:
    """The belt to the braces: text that somehow carries a key is redacted before it is written."""
    key = "rw_live_9f8e7d6c5b4a"
    log = RunLog(tmp_path / "run.log", Redactor([key, "abc", "rw_live"]))
    take = make_take("runware")
    log(Event(EventKind.WARNING, take, message=f"upstream said: invalid key {key} (see docs)"))
    log(Event(EventKind.RETRYING, take, message="key rw_live_* rotated"))
    log.close()
    text = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert key not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == f"upstream said: invalid key {REDACTED} (see docs)", "longest secret first"
    assert second["message"] == f"key {REDACTED}* rotated", "'rw_live_' is an 8-character run of the key"
    assert Redactor(["abc"])("abcdef") == "abcdef", "secrets under 4 characters are not redacted"


async def test_a_task_id_given_to_two_takes_fails_the_second(tmp_path: Path) -> None:
    """A provider that hands out one id twice: polling it for both would pass one clip off as two."""
    clock = VirtualClock()
    a, b = make_take("runway", shot="a"), make_take("runway", shot="b")

    class SameId(FakeProvider):
        async def submit(self, request: SubmitRequest) -> Submitted:
            self.submits.append((self.clock.now(), "task-1"))
            return Submitted(handle="task-1")

    provider = SameId(clock, answer=lambda _call, handles: {h: moderated(h) for h in handles}, name="runway")
    summary, journal = await run_fake(
        tmp_path, clock, provider, [a, b], NoDownloads(), lanes={"runway": LaneOptions(concurrency=2)}
    )
    assert summary.failed == 2
    rows = {row["shot"]: row for _, row in journal.sync.rows_after(0)}
    assert "which a#t01 already has" in rows["b"]["failure_message"]
    assert rows["a"]["failure_kind"] == "moderation", "the first take keeps its task"


async def test_an_always_expired_url_is_refreshed_3_times_then_the_take_is_paid_not_saved(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    take = make_take("runway", shot="a")

    def finished(_call: int, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        url = "https://cdn.example/x.mp4"
        return {
            h: TaskStatus(h, TaskState.SUCCEEDED, "SUCCEEDED", output_url=url, cost_usd=0.25) for h in handles
        }

    class Expired:
        fetches = 0

        async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
            Expired.fetches += 1
            raise ExpiredURLError("result URL expired", provider=provider, status=403, take=take)

    provider = FakeProvider(clock, answer=finished, name="runway")
    summary, journal = await run_fake(
        tmp_path,
        clock,
        provider,
        [take],
        Expired(),
        lanes={"runway": LaneOptions(concurrency=1)},
        collect=CollectOptions(url_refreshes=3),
    )
    assert summary.failed == 1
    assert Expired.fetches == 4, "the first URL and three fresh ones"
    assert len(provider.polls) == 4, "one poll to finish, three to refresh"
    ((_, row),) = journal.sync.rows_after(0)
    assert row["failure_kind"] == "download"
    assert "still expired after 3 refreshes" in row["failure_message"]
    assert row["cost_usd"] == 0.25, "paid: the cost stays in the ledger"
    assert journal.sync.get(take.key).paid_not_saved
