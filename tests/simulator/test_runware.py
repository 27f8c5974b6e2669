"""Runware over real HTTP: the source document's examples, async tasks, batching, per-task errors."""

from __future__ import annotations

import copy
import uuid
from typing import Any
from urllib.parse import urlsplit

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
    post_json,
    runware_examples,
    runware_headers,
    runware_task,
)

pytestmark = pytest.mark.anyio

FAST = 0.002
ERROR_KEYS = {"code", "message", "parameter", "taskType"}


def url(sim: Simulator) -> str:
    return f"{sim.base_url}/v1"


def poll_items(*task_uuids: str) -> list[dict[str, str]]:
    return [{"taskType": "getResponse", "taskUUID": u} for u in task_uuids]


async def send(session: aiohttp.ClientSession, sim: Simulator, tasks: Any) -> tuple[int, Any]:
    return await post_json(session, url(sim), tasks, headers=runware_headers(sim))


async def wait_all(session: aiohttp.ClientSession, sim: Simulator, *task_uuids: str) -> dict[str, Any]:
    """Poll all tasks in one request per round until none is processing; items by taskUUID."""

    async def probe() -> dict[str, Any] | None:
        status, body = await send(session, sim, poll_items(*task_uuids))
        assert status == 200
        items = {item["taskUUID"]: item for item in [*body["data"], *body.get("errors", [])]}
        assert set(items) == set(task_uuids)
        return None if any(i.get("status") == "processing" for i in items.values()) else items

    return await eventually(probe)


async def test_source_document_examples_are_accepted_as_they_are(sim_factory: SimFactory) -> None:
    examples = runware_examples()
    assert len(examples) == 5
    requests = [copy.deepcopy(example["request"]) for example in examples]
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        status, body = await send(session, sim, requests)  # no deliveryMethod: held until done
        assert status == 200, body
        assert "errors" not in body
        results = {item["taskUUID"]: item for item in body["data"]}
        for example in examples:
            expected = example["response"]
            got = results[expected["taskUUID"]]
            assert set(got) == set(expected)
            for key in ("taskType", "taskUUID", "seed", "cost"):
                assert got[key] == expected[key], key
            assert uuid.UUID(got["videoUUID"]).version == 4
            assert urlsplit(got["videoURL"]).path.endswith(f"/{got['videoUUID']}.mp4")
            code, data, _ = await fetch(session, got["videoURL"])
            assert code == 200
            assert_mp4(data)
        totals = sim.stats()["providers"]["runware"]
        assert (totals["submissions"], totals["accepted"], totals["completed"]) == (5, 5, 5)
        assert totals["billed_usd"] == pytest.approx(4 * 0.3042 + 0.4042)


async def test_async_task_ack_then_batched_polls(sim_factory: SimFactory) -> None:
    tasks = [runware_task(duration=d, seed=s) for d, s in ((6, 1), (8, 2), (2, 3))]
    uuids = [t["taskUUID"] for t in tasks]
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        status, body = await send(session, sim, tasks)
        assert status == 200
        assert body == {"data": [{"taskType": "videoInference", "taskUUID": u} for u in uuids]}
        status, body = await send(session, sim, poll_items(*uuids))
        assert status == 200
        assert all(item["status"] == "processing" for item in body["data"])
        items = await wait_all(session, sim, *uuids)
        for task, cost in zip(tasks, (0.3042, 0.4042, 0.1042), strict=True):
            item = items[task["taskUUID"]]
            assert item["status"] == "success" and item["taskType"] == "videoInference"
            assert item["seed"] == task["seed"] and item["cost"] == cost
            assert urlsplit(item["videoURL"]).path == f"/files/{item['videoUUID']}.mp4"
        counts = sim.stats()["providers"]["runware"]
        assert counts["polls"] == 3 * counts["poll_requests"]


async def test_cost_only_with_include_cost(sim_factory: SimFactory) -> None:
    task = runware_task(includeCost=None)
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        await send(session, sim, [task])
        item = (await wait_all(session, sim, task["taskUUID"]))[task["taskUUID"]]
        assert item["status"] == "success" and "cost" not in item
        assert sim.stats()["providers"]["runware"]["billed_usd"] == pytest.approx(0.3042)  # billed anyway


async def test_repeated_task_uuid_is_conflict(sim: Simulator) -> None:
    task = runware_task()
    async with aiohttp.ClientSession() as session:
        assert (await send(session, sim, [task]))[0] == 200
        status, body = await send(session, sim, [task])
    assert status == 400
    [error] = body["errors"]
    assert error["code"] == "conflictTaskUUID"
    assert error["taskUUID"] == task["taskUUID"] and error["taskType"] == "videoInference"
    stats = sim.stats()
    counts = stats["providers"]["runware"]
    assert (counts["submissions"], counts["accepted"], counts["rejected"]) == (2, 1, 1)
    assert stats["submissions_by_take"] == {task["taskUUID"]: 1}


BAD_TASKS: list[tuple[dict[str, Any], str, str]] = [
    ({"width": 1000, "height": 1000}, "width", "invalidWidth"),
    ({"height": None}, "width", "invalidWidth"),
    ({"duration": 1}, "duration", "invalidDuration"),
    ({"duration": 11}, "duration", "invalidDuration"),
    ({"positivePrompt": ""}, "positivePrompt", "invalidPositivePrompt"),
    ({"positivePrompt": "p" * 1001}, "positivePrompt", "invalidPositivePrompt"),
    ({"positivePrompt": None}, "positivePrompt", "missingPositivePrompt"),
    ({"inputs": {}}, "inputs.frameImages", "missingFrameImages"),
    (
        {"inputs": {"frameImages": [{"image": IMAGE, "frame": "last"}]}},
        "inputs.frameImages",
        "invalidFrameImages",
    ),
    (
        {"inputs": {"frameImages": [{"image": IMAGE}, {"image": IMAGE}]}},
        "inputs.frameImages",
        "invalidFrameImages",
    ),
    (
        {"inputs": {"frameImages": [{"image": "ftp://x.test/a.jpg"}]}},
        "inputs.frameImages",
        "invalidFrameImages",
    ),
    ({"deliveryMethod": "webhook"}, "deliveryMethod", "invalidDeliveryMethod"),
    ({"taskUUID": str(uuid.uuid1())}, "taskUUID", "invalidTaskUUID"),
    ({"model": "runway:2@1"}, "model", "invalidModel"),
    ({"numberResults": 2}, "numberResults", "invalidNumberResults"),
    ({"outputQuality": 10}, "outputQuality", "invalidOutputQuality"),
    ({"outputFormat": "GIF"}, "outputFormat", "invalidOutputFormat"),
    ({"seed": -5}, "seed", "invalidSeed"),
    (
        {"providerSettings": {"runway": {"contentModeration": {"publicFigureThreshold": "off"}}}},
        "providerSettings.runway.contentModeration.publicFigureThreshold",
        "invalidPublicFigureThreshold",
    ),
]


@pytest.mark.parametrize(("overrides", "parameter", "code"), BAD_TASKS)
async def test_errors_are_scoped_to_the_bad_task(
    sim: Simulator, overrides: dict[str, Any], parameter: str, code: str
) -> None:
    good, bad = runware_task(), runware_task(**overrides)
    async with aiohttp.ClientSession() as session:
        status, body = await send(session, sim, [good, bad])
        assert status == 200  # the good task still went through
        assert body["data"] == [{"taskType": "videoInference", "taskUUID": good["taskUUID"]}]
        [error] = body["errors"]
        assert set(error) >= ERROR_KEYS
        assert error["code"] == code and error["taskType"] == "videoInference"
        assert error["taskUUID"] == bad["taskUUID"]
        assert error["parameter"] == parameter
        status, body = await send(session, sim, [runware_task(**overrides)])
        assert status == 400 and "data" not in body  # alone, the request fails
    assert sim.stats()["providers"]["runware"]["accepted"] == 1


@pytest.mark.parametrize(
    "image", [PNG_DATA_URI, PNG_DATA_URI.split(",", 1)[1], str(uuid.uuid4()), "http://localhost:8/a.png"]
)
async def test_image_forms_runware_takes(sim: Simulator, image: str) -> None:
    task = runware_task(inputs={"frameImages": [{"image": image, "frame": "first"}]})
    async with aiohttp.ClientSession() as session:
        status, body = await send(session, sim, [task])
    assert status == 200, body


async def test_auth_header_or_leading_authentication_task(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await post_json(session, url(sim), [runware_task()])
        assert status == 401
        assert body["errors"][0]["code"] == "missingApiKey"
        status, body = await post_json(
            session, url(sim), [runware_task()], headers={"Authorization": "Bearer x"}
        )
        assert status == 401
        assert body["errors"][0] == {
            "code": "invalidApiKey",
            "message": body["errors"][0]["message"],
            "parameter": "apiKey",
            "taskType": "authentication",
        }
        auth = {"taskType": "authentication", "apiKey": sim.keys["runware"]}
        status, body = await post_json(session, url(sim), [auth, runware_task()])
        assert status == 200 and len(body["data"]) == 1
        wrong = {"taskType": "authentication", "apiKey": "nope"}
        status, _ = await post_json(session, url(sim), [wrong, runware_task()], headers=runware_headers(sim))
        assert status == 401
    assert sim.stats()["providers"]["runware"]["accepted"] == 1


async def test_over_capacity_is_429(sim_factory: SimFactory) -> None:
    async with sim_factory(runware_capacity=1) as sim, aiohttp.ClientSession() as session:
        assert (await send(session, sim, [runware_task()]))[0] == 200
        status, body = await send(session, sim, [runware_task()])
    assert status == 429
    assert body["errors"][0]["code"] == "queueCapacityExceeded"


async def test_moderated_task_is_an_error_item(sim_factory: SimFactory) -> None:
    task = runware_task(positivePrompt="storm [sim:moderate]")
    async with sim_factory(time_scale=FAST) as sim, aiohttp.ClientSession() as session:
        await send(session, sim, [task])
        item = (await wait_all(session, sim, task["taskUUID"]))[task["taskUUID"]]
        assert item["status"] == "error" and set(item) >= ERROR_KEYS
        assert item["taskType"] == "videoInference"
        counts = sim.stats()["providers"]["runware"]
        assert (counts["failed"], counts["billed_usd"]) == (1, 0.0)


async def test_unknown_task_and_bad_bodies(sim: Simulator) -> None:
    missing = str(uuid.uuid4())
    async with aiohttp.ClientSession() as session:
        status, body = await send(session, sim, poll_items(missing))
        assert status == 400
        assert body["errors"][0]["code"] == "taskNotFound" and body["errors"][0]["taskUUID"] == missing
        for bad in ({"taskType": "getResponse"}, [], ["x"]):
            status, body = await send(session, sim, bad)
            assert status == 400 and "errors" in body
        status, body = await send(session, sim, [{"taskType": "imageInference", "taskUUID": missing}])
        assert status == 400 and body["errors"][0]["code"] == "unsupportedTaskType"
