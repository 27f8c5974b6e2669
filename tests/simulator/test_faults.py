"""Injected faults: what each does on the wire, what it does to the bill, and that a seed fixes them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    aiml_body,
    aiml_headers,
    assert_mp4,
    eventually,
    get_json,
    post_json,
    runware_headers,
    runware_task,
    runway_body,
    runway_headers,
)

pytestmark = pytest.mark.anyio

FAST = 0.002


def endpoints(sim: Simulator) -> dict[str, tuple[str, Any, dict[str, str]]]:
    """provider → (submit URL, body, headers)."""
    return {
        "aimlapi": (f"{sim.base_url}/v2/video/generations", aiml_body(), aiml_headers(sim)),
        "runware": (f"{sim.base_url}/v1", [runware_task()], runware_headers(sim)),
        "runway": (f"{sim.base_url}/v1/image_to_video", runway_body(), runway_headers(sim)),
    }


def poll_request(sim: Simulator, provider: str, task_id: str) -> tuple[str, str, Any, dict[str, str]]:
    """(method, URL, JSON body, headers) that polls one task."""
    if provider == "aimlapi":
        return "GET", f"{sim.base_url}/v2/video/generations?generation_id={task_id}", None, aiml_headers(sim)
    if provider == "runway":
        return "GET", f"{sim.base_url}/v1/tasks/{task_id}", None, runway_headers(sim)
    body = [{"taskType": "getResponse", "taskUUID": task_id}]
    return "POST", f"{sim.base_url}/v1", body, runware_headers(sim)


def task_id_of(provider: str, body: Any, answer: Any) -> str:
    if provider == "runware":
        task_uuid: str = body[0]["taskUUID"]
        return task_uuid
    answer_id: str = answer["id"]
    return answer_id


def error_shape_ok(provider: str, body: Any) -> bool:
    if provider == "aimlapi":
        return {"message", "path", "requestId", "statusCode", "timestamp"} == set(body)
    if provider == "runware":
        return isinstance(body.get("errors"), list) and "code" in body["errors"][0]
    return isinstance(body.get("error"), str)


PROVIDERS = ("aimlapi", "runware", "runway")
CODES_5XX = {"aimlapi": {500, 502, 503}, "runware": {503, 504}, "runway": {502, 503, 504}}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_5xx_on_submit_registers_nothing(sim_factory: SimFactory, provider: str) -> None:
    async with sim_factory(http_5xx=1.0) as sim, aiohttp.ClientSession() as session:
        url, body, headers = endpoints(sim)[provider]
        status, answer = await post_json(session, url, body, headers=headers)
        assert status in CODES_5XX[provider]
        assert error_shape_ok(provider, answer)
        stats = sim.stats()
    counts = stats["providers"][provider]
    assert (counts["submissions"], counts["accepted"], counts["rejected"]) == (1, 0, 1)
    assert stats["submissions_by_take"] == {}
    assert stats["faults"]["http_5xx"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("share", "has_header"), [(1.0, True), (0.0, False)])
async def test_429_with_or_without_retry_after(
    sim_factory: SimFactory, provider: str, share: float, has_header: bool
) -> None:
    async with sim_factory(http_429=1.0, retry_after_share=share) as sim, aiohttp.ClientSession() as session:
        url, body, headers = endpoints(sim)[provider]
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 429
            assert error_shape_ok(provider, await response.json())
            assert ("Retry-After" in response.headers) is has_header
            if has_header:
                assert 1 <= int(response.headers["Retry-After"]) <= 5
        assert sim.stats()["providers"][provider]["accepted"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_resets_drop_polls_but_never_submits(sim_factory: SimFactory, provider: str) -> None:
    async with sim_factory(reset=1.0) as sim, aiohttp.ClientSession() as session:
        url, body, headers = endpoints(sim)[provider]
        status, answer = await post_json(session, url, body, headers=headers)
        assert status in (200, 201)
        method, poll_url, poll_body, poll_headers = poll_request(
            sim, provider, task_id_of(provider, body, answer)
        )
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.request(method, poll_url, json=poll_body, headers=poll_headers) as response:
                await response.read()
        stats = sim.stats()
    # aiohttp itself resends an idempotent GET once after a dropped keep-alive connection
    assert stats["faults"]["reset"] == stats["providers"][provider]["poll_requests"] >= 1
    assert stats["providers"][provider]["accepted"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_lost_submit_answer_is_registered_and_billed(sim_factory: SimFactory, provider: str) -> None:
    async with (
        sim_factory(time_scale=FAST, submit_lost_answer=1.0) as sim,
        aiohttp.ClientSession() as session,
    ):
        url, body, headers = endpoints(sim)[provider]
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post_json(session, url, body, headers=headers)

        async def billed() -> dict[str, Any] | None:
            stats = sim.stats()
            return stats if stats["providers"][provider]["completed"] == 1 else None

        stats = await eventually(billed)
    assert stats["faults"]["submit_lost_answer"] == 1
    assert stats["providers"][provider]["accepted"] == 1
    assert list(stats["submissions_by_take"].values()) == [1]
    assert stats["billed_usd"] > 0


async def test_runware_resend_after_a_lost_answer_meets_conflict(sim_factory: SimFactory) -> None:
    task = runware_task()
    async with sim_factory(submit_lost_answer=1.0) as sim, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post_json(session, f"{sim.base_url}/v1", [task], headers=runware_headers(sim))
        status, body = await post_json(session, f"{sim.base_url}/v1", [task], headers=runware_headers(sim))
        assert status == 400 and body["errors"][0]["code"] == "conflictTaskUUID"
        poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
        status, body = await post_json(session, f"{sim.base_url}/v1", poll, headers=runware_headers(sim))
        assert status == 200 and body["data"][0]["status"] == "processing"
    assert sim.stats()["submissions_by_take"] == {task["taskUUID"]: 1}


async def test_hang_delays_the_lost_answer_past_the_client_timeout(sim_factory: SimFactory) -> None:
    async with (
        sim_factory(submit_lost_answer=1.0, hang_seconds=0.3) as sim,
        aiohttp.ClientSession() as session,
    ):
        url = f"{sim.base_url}/v2/video/generations"
        with pytest.raises(TimeoutError):
            await session.post(
                url, json=aiml_body(), headers=aiml_headers(sim), timeout=aiohttp.ClientTimeout(0.05)
            )
        assert sim.stats()["providers"]["aimlapi"]["accepted"] == 1


async def test_slow_answers_still_arrive(sim_factory: SimFactory) -> None:
    async with sim_factory(slow=1.0, slow_seconds=5.0) as sim, aiohttp.ClientSession() as session:
        url = f"{sim.base_url}/v2/video/generations"
        status, body = await post_json(session, url, aiml_body(), headers=aiml_headers(sim))
        assert status == 201
        status, _ = await get_json(session, f"{url}?generation_id={body['id']}", headers=aiml_headers(sim))
        assert status == 200
        assert sim.stats()["faults"]["slow"] == 2


async def test_a_slow_submit_lands_even_when_its_client_gave_up(sim_factory: SimFactory) -> None:
    """Like a real API, the simulator finishes a request it received: no cancel on disconnect."""
    async with (
        sim_factory(time_scale=1.0, slow=1.0, slow_seconds=0.3) as sim,
        aiohttp.ClientSession() as session,
    ):
        url = f"{sim.base_url}/v2/video/generations"
        with pytest.raises(TimeoutError):
            await session.post(
                url, json=aiml_body(), headers=aiml_headers(sim), timeout=aiohttp.ClientTimeout(0.05)
            )

        async def accepted() -> int | None:
            return sim.stats()["providers"]["aimlapi"]["accepted"] or None

        assert await eventually(accepted, attempts=200, interval=0.01) == 1


async def test_moderation_odds_fail_tasks_without_the_trigger(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, moderation=1.0) as sim, aiohttp.ClientSession() as session:
        url = f"{sim.base_url}/v1/image_to_video"
        _, created = await post_json(session, url, runway_body(), headers=runway_headers(sim))

        async def final() -> dict[str, Any] | None:
            _, body = await get_json(
                session, f"{sim.base_url}/v1/tasks/{created['id']}", headers=runway_headers(sim)
            )
            return body if body["status"] in ("SUCCEEDED", "FAILED") else None

        assert (await final_status(final)) == "FAILED"
        assert sim.stats()["faults"]["moderation"] == 1


async def final_status(probe: Callable[[], Any]) -> str:
    body: dict[str, Any] = await eventually(probe)
    status: str = body["status"]
    return status


async def scripted_night(sim: Simulator) -> list[object]:
    """A fixed sequence of submits and polls; what each got back (status code or 'dropped')."""
    outcomes: list[object] = []
    async with aiohttp.ClientSession() as session:
        for i in range(25):
            for provider in PROVIDERS:
                url, body, headers = endpoints(sim)[provider]
                if provider == "runware":
                    body = [runware_task(taskUUID=str(uuid.UUID(int=i + 1, version=4)), seed=i)]
                else:
                    body = {**body, "seed": i}
                try:
                    status, answer = await post_json(session, url, body, headers=headers)
                except aiohttp.ClientConnectionError:
                    outcomes.append("dropped")
                    continue
                outcomes.append(status)
                if status in (200, 201):
                    outcomes.append(
                        await poll_once(session, sim, provider, task_id_of(provider, body, answer))
                    )
    return [*outcomes, sim.stats()["faults"]]


async def poll_once(session: aiohttp.ClientSession, sim: Simulator, provider: str, task_id: str) -> object:
    method, url, body, headers = poll_request(sim, provider, task_id)
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return "dropped"


async def test_faults_are_deterministic_under_a_seed(sim_factory: SimFactory) -> None:
    # Real time so nothing ends mid-script; slow answers rolled (and counted) but not waited for.
    knobs = {"time_scale": 1.0, "slow_seconds": 0.0, "aiml_concurrency": 100, "runway_concurrency": 100}
    runs = []
    for seed in (7, 7, 8):
        async with sim_factory("hostile", seed=seed, **knobs) as sim:
            runs.append(await scripted_night(sim))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    faults = runs[0][-1]
    assert isinstance(faults, dict) and sum(faults.values()) > 10


async def test_flaky_world_lets_a_retrying_client_finish_every_take(sim_factory: SimFactory) -> None:
    """Every fault in ``flaky`` is transient: retries alone finish every take, and nothing bills twice."""
    async with sim_factory("flaky", seed=3, time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        clips = await asyncio.gather(*(run_take(session, sim, aiml_body(seed=seed)) for seed in range(8)))
        for data in clips:
            assert_mp4(data)
        stats = sim.stats()
    counts = stats["providers"]["aimlapi"]
    assert counts["completed"] == 8 and counts["failed"] == 0
    assert counts["billed_usd"] == pytest.approx(8 * 0.25)
    assert sorted(stats["submissions_by_take"].values()) == [1] * 8
    assert sum(stats["faults"].values()) > 0


async def run_take(session: aiohttp.ClientSession, sim: Simulator, body: dict[str, Any]) -> bytes:
    """A minimal honest AIML client: resend only on 5xx/429, re-poll for a fresh URL on any bad download."""
    url = f"{sim.base_url}/v2/video/generations"

    async def submit() -> str | None:
        status, answer = await post_json(session, url, body, headers=aiml_headers(sim))
        return str(answer["id"]) if status == 201 else None

    gen_id = await eventually(submit)

    async def download() -> bytes | None:
        try:
            status, answer = await get_json(
                session, f"{url}?generation_id={gen_id}", headers=aiml_headers(sim)
            )
            if status != 200 or answer["status"] != "completed":
                return None
            async with session.get(answer["video"]["url"]) as response:
                return await response.read() if response.status == 200 else None
        except aiohttp.ClientError:
            return None

    return await eventually(download)


def test_take_ids_are_sha256_of_canonical_json() -> None:
    """The documented rule other tests use to find a take in ``submissions_by_take``."""
    from runner.simulator.wire import take_id

    body = {"b": 1, "a": [1, 2], "prompt": "é"}
    expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert take_id(body) == expected
    assert take_id(dict(reversed(list(body.items())))) == expected
