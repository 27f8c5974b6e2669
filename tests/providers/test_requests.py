"""The exact requests each adapter sends, as a real HTTP server receives them (providers.md §1–§4)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from runner.errors import FailureKind, TerminalError
from runner.manifest.limits import RATIO_SIZES
from runner.manifest.takes import task_uuid
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.base import Provider, ProviderConfig, SubmitRequest
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider
from tests.providers.helpers import IMAGE_URL, TEST_KEY, answer, canned, config_for, make_request, make_take

pytestmark = pytest.mark.anyio


async def test_aimlapi_submit_request(session: aiohttp.ClientSession) -> None:
    async with canned(answer(201, {"id": "gen-1", "status": "queued"})) as server:
        provider = AimlApiProvider(config_for("aimlapi", server.base_url), session)
        request = SubmitRequest(
            take=make_take("aimlapi", duration=10, ratio="9:16", seed=77),
            image=IMAGE_URL,
            last_image="data:image/png;base64,iVBORw0KGgo=",
        )
        submitted = await provider.submit(request)
    assert submitted.handle == "gen-1"
    assert not submitted.already_existed
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v2/video/generations")
    assert seen.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert seen.body == {
        "model": "runway/gen4_turbo",
        "image_url": IMAGE_URL,
        "tail_image_url": "data:image/png;base64,iVBORw0KGgo=",
        "prompt": "A dragon rushes toward the camera",
        "aspect_ratio": "9:16",
        "duration": 10,
        "seed": 77,
    }


async def test_aimlapi_poll_request(session: aiohttp.ClientSession) -> None:
    async with canned(answer(200, {"id": "gen-1", "status": "generating"})) as server:
        provider = AimlApiProvider(config_for("aimlapi", server.base_url), session)
        statuses = await provider.poll(["gen-1"])
    (seen,) = server.seen
    assert (seen.method, seen.path, dict(seen.query)) == (
        "GET",
        "/v2/video/generations",
        {"generation_id": "gen-1"},
    )
    assert seen.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert statuses["gen-1"].raw_status == "generating"


@pytest.mark.parametrize("ratio", list(RATIO_SIZES))
async def test_runware_submit_request(session: aiohttp.ClientSession, ratio: str) -> None:
    request = make_request("runware", ratio=ratio, duration=6, seed=29718, attempt=2)
    expected_uuid = task_uuid(request.take.key, 2)
    ack = {"data": [{"taskType": "videoInference", "taskUUID": expected_uuid}]}
    async with canned(answer(200, ack)) as server:
        provider = RunwareProvider(config_for("runware", server.base_url), session)
        submitted = await provider.submit(request)
    assert submitted.handle == expected_uuid
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1")
    assert seen.headers["Authorization"] == f"Bearer {TEST_KEY}"
    width, height = RATIO_SIZES[ratio]
    assert seen.body == [
        {
            "taskType": "videoInference",
            "taskUUID": expected_uuid,
            "model": "runway:1@1",
            "positivePrompt": "A dragon rushes toward the camera",
            "width": width,
            "height": height,
            "duration": 6,
            "seed": 29718,
            "inputs": {"frameImages": [{"image": IMAGE_URL, "frame": "first"}]},
            "deliveryMethod": "async",
            "includeCost": True,
        }
    ]


async def test_runware_task_uuid_is_v4_deterministic_and_per_attempt(session: aiohttp.ClientSession) -> None:
    async with canned(answer(200, {"data": []})) as server:
        provider = RunwareProvider(config_for("runware", server.base_url), session)
        await provider.submit(make_request("runware", attempt=1))
        await provider.submit(make_request("runware", attempt=1))
        await provider.submit(make_request("runware", attempt=2))
        await provider.submit(make_request("runware", attempt=1, seed=1))
    first, again, retry, other = (seen.body[0]["taskUUID"] for seen in server.seen)
    assert uuid.UUID(first).version == 4
    assert str(uuid.UUID(first)) == first
    assert first == again
    assert len({first, retry, other}) == 3


async def test_runware_poll_is_one_batched_request(session: aiohttp.ClientSession) -> None:
    handles = [str(uuid.uuid4()) for _ in range(3)]
    async with canned(answer(200, {"data": []})) as server:
        provider = RunwareProvider(config_for("runware", server.base_url), session)
        assert await provider.poll(handles) == {}
    (seen,) = server.seen
    assert seen.body == [{"taskType": "getResponse", "taskUUID": h} for h in handles]


@pytest.mark.parametrize(("ratio", "wire"), [(r, f"{w}:{h}") for r, (w, h) in RATIO_SIZES.items()])
async def test_runway_submit_request(session: aiohttp.ClientSession, ratio: str, wire: str) -> None:
    async with canned(answer(200, {"id": "d2e3"})) as server:
        provider = RunwayProvider(config_for("runway", server.base_url), session)
        submitted = await provider.submit(make_request("runway", ratio=ratio, duration=7, seed=5))
    assert submitted.handle == "d2e3"
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/image_to_video")
    assert seen.headers["X-Runway-Version"] == "2024-11-06"
    assert seen.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert seen.body == {
        "model": "gen4_turbo",
        "promptImage": IMAGE_URL,
        "promptText": "A dragon rushes toward the camera",
        "ratio": wire,
        "duration": 7,
        "seed": 5,
    }


async def test_runway_poll_request(session: aiohttp.ClientSession) -> None:
    async with canned(answer(200, {"id": "d2e3", "status": "RUNNING", "progress": 0.4})) as server:
        provider = RunwayProvider(config_for("runway", server.base_url), session)
        statuses = await provider.poll(["d2e3"])
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("GET", "/v1/tasks/d2e3")
    assert seen.headers["X-Runway-Version"] == "2024-11-06"
    assert statuses["d2e3"].progress == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("provider", "fields", "last_image"),
    [
        ("aimlapi", {"duration": 6}, None),
        ("runware", {"duration": 11}, None),
        ("runway", {"ratio": "2:1"}, None),
        ("runware", {}, "https://example.com/last.jpg"),
        ("runway", {}, "https://example.com/last.jpg"),
    ],
)
async def test_unsendable_takes_are_refused_before_sending(
    session: aiohttp.ClientSession, provider: str, fields: dict[str, Any], last_image: str | None
) -> None:
    classes: dict[str, Callable[[ProviderConfig, aiohttp.ClientSession], Provider]] = {
        "aimlapi": AimlApiProvider,
        "runware": RunwareProvider,
        "runway": RunwayProvider,
    }
    async with canned(answer(200, {})) as server:
        adapter = classes[provider](config_for(provider, server.base_url), session)
        request = SubmitRequest(take=make_take(provider, **fields), image=IMAGE_URL, last_image=last_image)
        with pytest.raises(TerminalError) as caught:
            await adapter.submit(request)
    assert caught.value.kind is FailureKind.INPUT
    assert server.seen == []


def test_declared_attributes() -> None:
    assert (AimlApiProvider.name, AimlApiProvider.max_poll_batch, AimlApiProvider.resend_safe) == (
        "aimlapi",
        1,
        False,
    )
    assert (RunwareProvider.name, RunwareProvider.resend_safe) == ("runware", True)
    assert RunwareProvider.max_poll_batch >= 50
    assert (RunwayProvider.name, RunwayProvider.max_poll_batch, RunwayProvider.resend_safe) == (
        "runway",
        1,
        False,
    )
    assert RunwayProvider.min_poll_interval == 5.0
    assert 0 < AimlApiProvider.min_poll_interval <= 10 and 0 < RunwareProvider.min_poll_interval <= 3
