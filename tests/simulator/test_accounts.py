"""The account side of the simulator: key checks that bill nothing, Runway's tier and daily cap,
injected Runway failure codes, and AIML's ``generation_id``-only answers (issue 10 knobs)."""

from __future__ import annotations

import aiohttp
import pytest

from runner.simulator import SimConfig, Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    aiml_body,
    aiml_headers,
    eventually,
    get_json,
    post_json,
    runway_body,
    runway_headers,
)

pytestmark = pytest.mark.anyio

FAST = 0.002


async def test_runway_daily_cap_refuses_past_it_and_org_reports_it(sim_factory: SimFactory) -> None:
    async with (
        sim_factory(time_scale=FAST, runway_daily_limit=3, runway_daily_used=1) as sim,
        aiohttp.ClientSession() as session,
    ):
        url, headers = f"{sim.base_url}/v1/image_to_video", runway_headers(sim)
        answers = [await post_json(session, url, runway_body(seed=s), headers=headers) for s in range(3)]
        status, org = await get_json(session, f"{sim.base_url}/v1/organization", headers=headers)
    assert status == 200
    assert [a[0] for a in answers] == [200, 200, 429]
    assert "daily limit of 3" in answers[2][1]["error"]
    assert org["tier"]["models"]["gen4_turbo"]["maxDailyGenerations"] == 3
    assert org["usage"]["models"]["gen4_turbo"]["dailyGenerations"] == 3
    runway = sim.stats()["providers"]["runway"]
    assert (runway["accepted"], runway["rejected"], runway["account_checks"]) == (2, 1, 1)


async def test_runway_failure_code_knob_fails_each_takes_first_tasks(sim_factory: SimFactory) -> None:
    knobs = {"runway_fail_first": 1, "runway_failure_code": "THIRD_PARTY.UNAVAILABLE"}
    async with sim_factory(time_scale=FAST, **knobs) as sim, aiohttp.ClientSession() as session:
        url, headers = f"{sim.base_url}/v1/image_to_video", runway_headers(sim)
        ids = [(await post_json(session, url, runway_body(), headers=headers))[1]["id"] for _ in range(2)]

        async def finished() -> list[dict[str, object]] | None:
            bodies = [
                (await get_json(session, f"{sim.base_url}/v1/tasks/{i}", headers=headers))[1] for i in ids
            ]
            return bodies if all(b["status"] in ("SUCCEEDED", "FAILED") for b in bodies) else None

        first, second = await eventually(finished)
    assert (first["status"], first["failureCode"], first["cost"]) == (
        "FAILED",
        "THIRD_PARTY.UNAVAILABLE",
        {"credits": 0},
    )
    assert second["status"] == "SUCCEEDED"


async def test_runware_lone_authentication_task_checks_the_key(sim: Simulator) -> None:
    base = sim.base_url
    key = sim.keys["runware"]
    async with aiohttp.ClientSession() as session:
        good = await post_json(session, f"{base}/v1", [{"taskType": "authentication", "apiKey": key}])
        bad = await post_json(session, f"{base}/v1", [{"taskType": "authentication", "apiKey": "nope"}])
    assert good[0] == 200
    assert good[1]["data"][0]["taskType"] == "authentication"
    assert good[1]["data"][0]["connectionSessionUUID"]
    assert bad[0] == 401 and bad[1]["errors"][0]["code"] == "invalidApiKey"
    runware = sim.stats()["providers"]["runware"]
    assert (runware["account_checks"], runware["submissions"]) == (2, 0)


async def test_aiml_balance_and_generation_id_only(sim_factory: SimFactory) -> None:
    async with (
        sim_factory(aiml_generation_id_only=True, aiml_credits=5_000_000) as sim,
        aiohttp.ClientSession() as s,
    ):
        ok = await get_json(s, f"{sim.base_url}/v1/billing/balance", headers=aiml_headers(sim))
        bad = await get_json(s, f"{sim.base_url}/v1/billing/balance", headers={"Authorization": "Bearer x"})
        submit = await post_json(
            s, f"{sim.base_url}/v2/video/generations", aiml_body(), headers=aiml_headers(sim)
        )
    assert ok[0] == 200 and ok[1]["balance"] == 5_000_000
    assert bad[0] == 401
    assert submit[0] == 201 and "id" not in submit[1] and submit[1]["generation_id"]


@pytest.mark.parametrize(
    "knobs",
    [{"runway_daily_limit": -1}, {"runway_daily_used": -1}, {"runway_fail_first": -2}],
)
def test_account_knobs_are_checked(knobs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(knobs))):
        SimConfig.from_profile("clean", **knobs)
