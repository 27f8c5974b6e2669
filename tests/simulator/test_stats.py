"""``/_sim/stats``: the names other tests rely on, and counts that add up across all three providers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    aiml_body,
    aiml_headers,
    eventually,
    get_json,
    post_json,
    runware_headers,
    runware_task,
    runway_body,
    runway_headers,
    stats,
)

pytestmark = pytest.mark.anyio

FAST = 0.002
PROVIDER_KEYS = {
    "submissions",
    "accepted",
    "rejected",
    "polls",
    "poll_requests",
    "billed_usd",
    "in_flight",
    "max_in_flight",
    "completed",
    "failed",
    "account_checks",
}
FAULT_KEYS = {
    "http_5xx",
    "http_429",
    "reset",
    "submit_lost_answer",
    "slow",
    "truncate",
    "expire",
    "moderation",
}


def take(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def test_fresh_stats_have_every_name_and_match_the_route(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        served = await stats(session, sim)
    assert served == sim.stats()
    assert set(served) == {
        "providers",
        "submissions_by_take",
        "billed_usd",
        "downloads",
        "download_bytes",
        "faults",
    }
    assert set(served["providers"]) == {"aimlapi", "runware", "runway"}
    for counts in served["providers"].values():
        assert set(counts) == PROVIDER_KEYS
        assert all(value == 0 for value in counts.values())
        assert isinstance(counts["billed_usd"], float)
    assert set(served["faults"]) == FAULT_KEYS
    assert served["submissions_by_take"] == {} and served["billed_usd"] == 0.0


async def test_counts_add_up_across_providers(sim_factory: SimFactory) -> None:
    aiml_ok, aiml_moderated = aiml_body(seed=1), aiml_body(seed=2, prompt="[sim:moderate]")
    runware_a, runware_b = runware_task(duration=6), runware_task(duration=8)
    runway_ok = runway_body(duration=4)
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        aiml_url = f"{sim.base_url}/v2/video/generations"
        ids = [
            (await post_json(session, aiml_url, b, headers=aiml_headers(sim)))[1]["id"]
            for b in (aiml_ok, aiml_moderated)
        ]
        assert (await post_json(session, aiml_url, aiml_body(duration=7), headers=aiml_headers(sim)))[
            0
        ] == 400
        bad = runware_task(width=10)
        status, _ = await post_json(
            session, f"{sim.base_url}/v1", [runware_a, runware_b, bad], headers=runware_headers(sim)
        )
        assert status == 200
        _, created = await post_json(
            session, f"{sim.base_url}/v1/image_to_video", runway_ok, headers=runway_headers(sim)
        )

        during = sim.stats()  # a loaded machine may let a short task end already: at most these
        in_flight = [during["providers"][p]["in_flight"] for p in ("aimlapi", "runware", "runway")]
        assert all(n <= most for n, most in zip(in_flight, (2, 2, 1), strict=True)), in_flight

        async def all_done() -> dict[str, Any] | None:
            for gen_id in ids:
                await get_json(session, f"{aiml_url}?generation_id={gen_id}", headers=aiml_headers(sim))
            poll = [{"taskType": "getResponse", "taskUUID": t["taskUUID"]} for t in (runware_a, runware_b)]
            await post_json(session, f"{sim.base_url}/v1", poll, headers=runware_headers(sim))
            await get_json(session, f"{sim.base_url}/v1/tasks/{created['id']}", headers=runway_headers(sim))
            now = await stats(session, sim)
            return now if all(p["in_flight"] == 0 for p in now["providers"].values()) else None

        final = await eventually(all_done)

    aiml, runware, runway = (final["providers"][p] for p in ("aimlapi", "runware", "runway"))
    assert (aiml["submissions"], aiml["accepted"], aiml["rejected"]) == (3, 2, 1)
    assert (aiml["completed"], aiml["failed"], aiml["max_in_flight"]) == (1, 1, 2)
    assert aiml["polls"] == aiml["poll_requests"] == 2 * runway["poll_requests"]
    assert (runware["submissions"], runware["accepted"], runware["rejected"]) == (3, 2, 1)
    assert runware["polls"] == 2 * runware["poll_requests"]
    assert runware["max_in_flight"] == 2, "both were in flight together (the peak, whatever the load)"
    assert (runway["accepted"], runway["completed"], runway["max_in_flight"]) == (1, 1, 1)
    assert aiml["billed_usd"] == pytest.approx(0.25)
    assert runware["billed_usd"] == pytest.approx(0.3042 + 0.4042)
    assert runway["billed_usd"] == pytest.approx(0.20)
    assert final["billed_usd"] == pytest.approx(0.25 + 0.3042 + 0.4042 + 0.20)
    assert final["submissions_by_take"] == {
        take(aiml_ok): 1,
        take(aiml_moderated): 1,
        runware_a["taskUUID"]: 1,
        runware_b["taskUUID"]: 1,
        take(runway_ok): 1,
    }
    assert final["faults"]["moderation"] == 1
