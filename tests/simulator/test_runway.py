"""Runway's API over real HTTP: statuses, THROTTLED queueing, cancel, organisation, 400s naming fields."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

import aiohttp
import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    IMAGE,
    PNG_DATA_URI,
    assert_mp4,
    eventually,
    fetch,
    get_json,
    post_json,
    runway_body,
    runway_headers,
)

pytestmark = pytest.mark.anyio

FAST = 0.002
ACTIVE = ("PENDING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


async def create(session: aiohttp.ClientSession, sim: Simulator, **overrides: Any) -> str:
    status, body = await post_json(
        session, f"{sim.base_url}/v1/image_to_video", runway_body(**overrides), headers=runway_headers(sim)
    )
    assert status == 200, body
    task_id: str = body["id"]
    return task_id


async def task(session: aiohttp.ClientSession, sim: Simulator, task_id: str) -> dict[str, Any]:
    status, body = await get_json(session, f"{sim.base_url}/v1/tasks/{task_id}", headers=runway_headers(sim))
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def snapshots_until_done(
    session: aiohttp.ClientSession, sim: Simulator, task_ids: list[str]
) -> list[list[dict[str, Any]]]:
    """Poll every task each round until all are terminal; returns every round's answers."""
    rounds: list[list[dict[str, Any]]] = []

    async def probe() -> bool | None:
        answers = [await task(session, sim, task_id) for task_id in task_ids]
        rounds.append(answers)
        return True if all(a["status"] in TERMINAL for a in answers) else None

    await eventually(probe)
    return rounds


async def test_task_life_and_envelopes(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        status, created = await post_json(
            session, f"{sim.base_url}/v1/image_to_video", runway_body(duration=7), headers=runway_headers(sim)
        )
        assert status == 200
        assert created == {"id": created["id"], "estimatedCost": {"credits": 35}}
        rounds = await snapshots_until_done(session, sim, [created["id"]])
        answers = [r[0] for r in rounds]
        progress = [a["progress"] for a in answers if a["status"] == "RUNNING"]
        assert progress == sorted(progress) and all(0 <= p <= 1 for p in progress)
        for answer in answers[:-1]:
            assert answer["status"] in ACTIVE
            assert answer["estimatedCost"] == {"credits": 35} and "cost" not in answer
        final = answers[-1]
        assert final["status"] == "SUCCEEDED" and final["cost"] == {"credits": 35}
        assert datetime.fromisoformat(final["createdAt"]).tzinfo is not None
        [output] = final["output"]
        code, data, _ = await fetch(session, output)
        assert code == 200
        assert_mp4(data)
        assert sim.stats()["providers"]["runway"]["billed_usd"] == pytest.approx(0.35)


async def test_excess_tasks_wait_throttled_and_run_one_by_one(sim_factory: SimFactory) -> None:
    # Slower than FAST: the first snapshot must be taken before the first task can finish, even on a
    # loaded CI machine (0.01 gives the three creates and three polls about 0.6 s).
    async with sim_factory(time_scale=0.01, runway_concurrency=1) as sim, aiohttp.ClientSession() as session:
        ids = [await create(session, sim, seed=seed) for seed in (1, 2, 3)]
        first = [await task(session, sim, task_id) for task_id in ids]
        assert first[0]["status"] in ACTIVE
        assert [a["status"] for a in first[1:]] == ["THROTTLED", "THROTTLED"]
        assert all(a["estimatedCost"] == {"credits": 25} for a in first[1:])
        assert sim.stats()["providers"]["runway"]["in_flight"] == 3  # THROTTLED counts
        rounds = await snapshots_until_done(session, sim, ids)
        # One at a time, first come first served: once a later task has been seen active, an
        # earlier one is never seen active again. (Not "≤ 1 active per round": a round polls the
        # tasks one after another, so task 1 may end and task 2 start between two of its polls.)
        active = [[n for n, a in enumerate(answers) if a["status"] in ACTIVE] for answers in rounds]
        spans = [[r for r, seen in enumerate(active) if n in seen] for n in range(3)]
        seen_active = [span for span in spans if span]
        assert seen_active, active
        assert all(a[-1] <= b[0] for a, b in pairwise(seen_active)), active
        assert all(a["status"] == "SUCCEEDED" for a in rounds[-1])
        counts = sim.stats()["providers"]["runway"]
        assert (counts["max_in_flight"], counts["completed"], counts["in_flight"]) == (3, 3, 0)
        assert counts["billed_usd"] == pytest.approx(0.75)  # throttled tasks are billed when they finish


async def test_cancel_refunds_and_frees_the_slot(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, runway_concurrency=1) as sim, aiohttp.ClientSession() as session:
        running, waiting = await create(session, sim, seed=1), await create(session, sim, seed=2)
        for task_id in (waiting, running):
            async with session.delete(f"{sim.base_url}/v1/tasks/{task_id}", headers=runway_headers(sim)) as r:
                assert r.status == 204
        for task_id in (running, waiting):
            cancelled = await task(session, sim, task_id)
            assert cancelled["status"] == "CANCELLED" and cancelled["cost"] == {"credits": 0}
        third = await create(session, sim, seed=3)
        assert (await task(session, sim, third))["status"] in ACTIVE  # the slot is free at once
        await snapshots_until_done(session, sim, [third])
        async with session.delete(f"{sim.base_url}/v1/tasks/{third}", headers=runway_headers(sim)) as r:
            assert r.status == 204  # deleting a finished task
        status, _ = await get_json(session, f"{sim.base_url}/v1/tasks/{third}", headers=runway_headers(sim))
        assert status == 404
        counts = sim.stats()["providers"]["runway"]
        assert counts["billed_usd"] == pytest.approx(0.25)  # only the finished one


async def test_moderation_fails_with_safety_code(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        task_id = await create(session, sim, promptText="[sim:moderate] a face")
        final = (await snapshots_until_done(session, sim, [task_id]))[-1][0]
        assert final["status"] == "FAILED"
        assert final["failureCode"] == "SAFETY.INPUT.IMAGE" and final["failure"]
        assert final["cost"] == {"credits": 0}


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"model": "gen4"}, "model"),
    ({"promptImage": None}, "promptImage"),
    ({"promptImage": "http://example.com/a.jpg"}, "promptImage"),
    ({"promptImage": "data:image/png;base64," + "A" * (5 * 1024 * 1024)}, "promptImage"),
    ({"promptImage": [{"uri": IMAGE, "position": "last"}]}, "promptImage"),
    (
        {"promptImage": [{"uri": IMAGE, "position": "first"}, {"uri": IMAGE, "position": "first"}]},
        "promptImage",
    ),
    ({"ratio": "16:9"}, "ratio"),
    ({"ratio": None}, "ratio"),
    ({"duration": 1}, "duration"),
    ({"duration": 11}, "duration"),
    ({"promptText": ""}, "promptText"),
    ({"promptText": "🐉" * 501}, "promptText"),  # 501 characters, 1002 UTF-16 code units
    ({"seed": -1}, "seed"),
    ({"seed": 4_294_967_296}, "seed"),
    ({"contentModeration": {"publicFigureThreshold": "off"}}, "publicFigureThreshold"),
    ({"prompt": "unknown field"}, "prompt"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_BODIES)
async def test_400_names_the_field(sim: Simulator, overrides: dict[str, Any], field: str) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await post_json(
            session,
            f"{sim.base_url}/v1/image_to_video",
            runway_body(**overrides),
            headers=runway_headers(sim),
        )
    assert status == 400
    assert f"'{field}'" in body["error"] or field in body["error"]
    assert body["issues"][0]["path"][-1] == field
    assert sim.stats()["providers"]["runway"]["accepted"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"promptImage": [{"uri": IMAGE, "position": "first"}]},
        {"promptImage": PNG_DATA_URI},
        {"promptText": "🐉" * 500, "duration": 2, "ratio": "1584:672"},
        {
            "promptText": None,
            "seed": None,
            "duration": None,
            "contentModeration": {"publicFigureThreshold": "low"},
        },
    ],
)
async def test_valid_variants_are_accepted(sim: Simulator, overrides: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        assert await create(session, sim, **overrides)


async def test_auth_and_version_header(sim: Simulator) -> None:
    endpoint = f"{sim.base_url}/v1/organization"
    key = {"Authorization": f"Bearer {sim.keys['runway']}"}
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, endpoint, headers={"X-Runway-Version": "2024-11-06"})
        assert status == 401 and "error" in body
        status, body = await get_json(session, endpoint, headers={**key, "X-Runway-Version": "2023-01-01"})
        assert status == 400 and "X-Runway-Version" in body["error"]
        status, body = await get_json(session, endpoint, headers=key)
        assert status == 400 and "X-Runway-Version" in body["error"]
        status, body = await get_json(session, f"{sim.base_url}/v1/tasks/nope", headers=runway_headers(sim))
        assert status == 404 and body == {"error": "Task not found"}


async def test_organization_reports_tier_and_spend(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, runway_concurrency=3) as sim, aiohttp.ClientSession() as session:
        task_id = await create(session, sim)
        await snapshots_until_done(session, sim, [task_id])
        status, org = await get_json(session, f"{sim.base_url}/v1/organization", headers=runway_headers(sim))
    assert status == 200
    limits = org["tier"]["models"]["gen4_turbo"]
    assert limits["maxConcurrentGenerations"] == 3
    assert org["creditBalance"] == sim.config.runway_credits - 25
    assert org["usage"]["models"]["gen4_turbo"]["dailyGenerations"] == 1
