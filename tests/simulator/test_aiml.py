"""AIML API over real HTTP: envelopes, statuses, errors, concurrency, cost."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import (
    PNG_DATA_URI,
    aiml_body,
    aiml_headers,
    assert_mp4,
    eventually,
    fetch,
    get_json,
    post_json,
)

pytestmark = pytest.mark.anyio

FAST = 0.002  # 60 simulated seconds last 0.12 s
ERROR_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


def url(sim: Simulator, generation_id: str | None = None) -> str:
    base = f"{sim.base_url}/v2/video/generations"
    return base if generation_id is None else f"{base}?generation_id={generation_id}"


async def poll_until_done(
    session: aiohttp.ClientSession, sim: Simulator, gen_id: str
) -> list[dict[str, Any]]:
    """Every poll answer until a terminal one (inclusive)."""
    seen: list[dict[str, Any]] = []

    async def probe() -> dict[str, Any] | None:
        status, body = await get_json(session, url(sim, gen_id), headers=aiml_headers(sim))
        assert status == 200
        seen.append(body)
        return body if body["status"] in ("completed", "error") else None

    await eventually(probe)
    return seen


def assert_aiml_error(body: Any, status: int) -> None:
    assert set(body) == ERROR_KEYS
    assert body["statusCode"] == status
    assert body["path"] == "/v2/video/generations"


async def test_generation_life_envelopes_and_cost(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        status, submitted = await post_json(
            session, url(sim), aiml_body(duration=10), headers=aiml_headers(sim)
        )
        assert status == 201
        assert submitted == {"id": submitted["id"], "status": "queued"}
        seen = await poll_until_done(session, sim, submitted["id"])
        statuses = [body["status"] for body in seen]
        order = {"queued": 0, "generating": 1, "completed": 2}
        assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
        for body in seen:
            assert set(body) == {"id", "status", "video", "error", "meta"}
            assert body["id"] == submitted["id"]
        final = seen[-1]
        assert final["status"] == "completed" and final["error"] is None
        assert final["meta"] == {"usage": {"credits_used": 1_000_000}}  # 10 s × 100,000
        code, data, headers = await fetch(session, final["video"]["url"])
        assert code == 200 and headers["Content-Type"] == "video/mp4"
        assert_mp4(data)
        totals = sim.stats()
        assert totals["providers"]["aimlapi"]["billed_usd"] == pytest.approx(0.5)  # credits / 2,000,000
        assert totals["billed_usd"] == pytest.approx(0.5)


async def test_five_second_clip_uses_500k_credits(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        _, submitted = await post_json(session, url(sim), aiml_body(duration=None), headers=aiml_headers(sim))
        final = (await poll_until_done(session, sim, submitted["id"]))[-1]
        assert final["meta"]["usage"]["credits_used"] == 500_000


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model": "runway/gen4"}, "model"),
        ({"image_url": None}, "image_url"),
        ({"image_url": "http://example.com/a.jpg"}, "image_url"),
        ({"image_url": "ftp://example.com/a.jpg"}, "image_url"),
        ({"image_url": "data:text/plain;base64,aGVsbG8="}, "image_url"),
        ({"tail_image_url": "not a url"}, "tail_image_url"),
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"duration": 6}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"duration": True}, "duration"),
        ({"seed": -1}, "seed"),
        ({"seed": 4_294_967_296}, "seed"),
    ],
)
async def test_requests_the_api_refuses_are_400(
    sim: Simulator, overrides: dict[str, Any], field: str
) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await post_json(session, url(sim), aiml_body(**overrides), headers=aiml_headers(sim))
    assert status == 400
    assert_aiml_error(body, 400)
    assert field in body["message"]
    assert sim.stats()["providers"]["aimlapi"]["accepted"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_url": PNG_DATA_URI},
        {"image_url": "http://127.0.0.1:9/frame.png"},
        {"tail_image_url": "https://assets.example.com/last.jpg"},
        {"seed": 4_294_967_295, "duration": 10, "aspect_ratio": "21:9"},
        {"prompt": "y" * 1000},
        {"prompt": None, "aspect_ratio": None, "duration": None, "seed": None},
    ],
)
async def test_valid_variants_are_accepted(sim: Simulator, overrides: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await post_json(session, url(sim), aiml_body(**overrides), headers=aiml_headers(sim))
    assert status == 201, body
    assert body["status"] == "queued"


async def test_bad_json_is_400(sim: Simulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url(sim), data=b"{not json", headers=aiml_headers(sim)) as response,
    ):
        assert response.status == 400
        assert_aiml_error(await response.json(), 400)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sim-aimlapi-key"}]
)
async def test_missing_or_wrong_key_is_401(sim: Simulator, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await post_json(session, url(sim), aiml_body(), headers=headers)
        assert status == 401
        assert_aiml_error(body, 401)
        status, body = await get_json(session, url(sim, "anything"), headers=headers)
        assert status == 401
    assert sim.stats()["providers"]["aimlapi"]["submissions"] == 0


async def test_over_concurrency_is_429_until_a_slot_frees(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST, aiml_concurrency=2) as sim, aiohttp.ClientSession() as session:
        ids = []
        for seed in (1, 2):
            status, body = await post_json(session, url(sim), aiml_body(seed=seed), headers=aiml_headers(sim))
            assert status == 201
            ids.append(body["id"])
        async with session.post(url(sim), json=aiml_body(seed=3), headers=aiml_headers(sim)) as response:
            assert response.status == 429
            assert "Retry-After" not in response.headers  # none is documented for AIML
            assert_aiml_error(await response.json(), 429)
        for gen_id in ids:
            await poll_until_done(session, sim, gen_id)
        status, _ = await post_json(session, url(sim), aiml_body(seed=3), headers=aiml_headers(sim))
        assert status == 201
        counts = sim.stats()["providers"]["aimlapi"]
        assert (counts["submissions"], counts["accepted"], counts["rejected"]) == (4, 3, 1)
        assert counts["max_in_flight"] == 2


async def test_moderation_trigger_ends_in_error_and_bills_nothing(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        body = aiml_body(prompt="a dragon [sim:moderate] attacks")
        _, submitted = await post_json(session, url(sim), body, headers=aiml_headers(sim))
        final = (await poll_until_done(session, sim, submitted["id"]))[-1]
        assert final["status"] == "error" and final["video"] is None
        assert final["error"]["name"] == "ModerationError"
        counts = sim.stats()["providers"]["aimlapi"]
        assert (counts["failed"], counts["completed"], counts["billed_usd"]) == (1, 0, 0.0)


async def test_unknown_or_missing_generation_id(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, url(sim, "no-such-id"), headers=aiml_headers(sim))
        assert status == 404
        assert_aiml_error(body, 404)
        status, body = await get_json(session, url(sim), headers=aiml_headers(sim))
        assert status == 400
        assert "generation_id" in body["message"]
