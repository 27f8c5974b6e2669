"""Reading answers leniently: every documented variant, odd shapes, unknown words (providers.md §4)."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from runner.errors import FailureKind, TerminalError
from runner.providers import aimlapi, runware, runway
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.base import TaskState
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider
from tests.providers.helpers import answer, canned, config_for, in_turn, make_request

CLIP = "https://cdn.example/x.mp4"


# --- AIML -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("queued", TaskState.QUEUED),
        ("waiting", TaskState.QUEUED),
        ("generating", TaskState.RUNNING),
        ("active", TaskState.RUNNING),
        ("completed", TaskState.SUCCEEDED),
        ("error", TaskState.FAILED),
        ("COMPLETED", TaskState.SUCCEEDED),
        ("nebulous", TaskState.PENDING),
        ("", TaskState.PENDING),
    ],
)
def test_aiml_status_words(word: str, state: TaskState) -> None:
    assert aimlapi.parse_generation("g", {"id": "g", "status": word}).state is state


@pytest.mark.parametrize(
    "video", [{"url": CLIP}, [CLIP], [CLIP, "https://cdn.example/y.mp4"], [{"url": CLIP}]]
)
def test_aiml_video_shapes(video: object) -> None:
    status = aimlapi.parse_generation("g", {"status": "completed", "video": video})
    assert status.output_url == CLIP


def test_aiml_cost_is_credits_over_two_million() -> None:
    data = {"status": "completed", "video": {"url": CLIP}, "meta": {"usage": {"credits_used": 500_000}}}
    assert aimlapi.parse_generation("g", data).cost_usd == pytest.approx(0.25)
    assert aimlapi.parse_generation("g", {"status": "queued"}).cost_usd is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"name": "ModerationError", "message": "flagged"}, FailureKind.MODERATION),
        ({"name": "SafetyCheckFailed", "message": "x"}, FailureKind.MODERATION),
        ({"name": "ValidationError", "message": "bad image"}, FailureKind.INPUT),
        ({"name": "InternalError", "message": "oops"}, FailureKind.PROVIDER),
        ("content moderation rejected the prompt", FailureKind.MODERATION),
        (None, FailureKind.PROVIDER),
    ],
)
def test_aiml_failure_kinds(error: object, kind: FailureKind) -> None:
    status = aimlapi.parse_generation("g", {"status": "error", "video": None, "error": error})
    assert (status.state, status.failure_kind) == (TaskState.FAILED, kind)
    assert status.failure_message


# --- Runware --------------------------------------------------------------------------------------


def test_runware_success_item() -> None:
    item = {"taskUUID": "t", "status": "success", "videoURL": CLIP, "seed": 29718, "cost": 0.3042}
    status = runware.parse_item("t", item)
    assert (status.state, status.output_url, status.seed, status.cost_usd) == (
        TaskState.SUCCEEDED,
        CLIP,
        29718,
        0.3042,
    )


@pytest.mark.parametrize(
    ("item", "state"),
    [
        ({"status": "processing"}, TaskState.RUNNING),
        ({"status": "error", "message": "boom"}, TaskState.FAILED),
        ({"status": "someday"}, TaskState.PENDING),
        ({"videoURL": CLIP}, TaskState.SUCCEEDED),
        ({}, TaskState.PENDING),
    ],
)
def test_runware_item_states(item: dict[str, Any], state: TaskState) -> None:
    assert runware.parse_item("t", {"taskUUID": "t", **item}).state is state


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("contentModerationFailed", "x", FailureKind.MODERATION),
        ("providerError", "Output blocked by the safety filter", FailureKind.MODERATION),
        ("invalidFrameImages", "cannot fetch image", FailureKind.INPUT),
        ("providerError", "upstream failed", FailureKind.PROVIDER),
        (None, None, FailureKind.PROVIDER),
    ],
)
def test_runware_failure_kinds(code: str | None, message: str | None, kind: FailureKind) -> None:
    assert runware.classify(code, message) is kind


@pytest.mark.parametrize(
    ("item", "state"),
    [
        ({"status": "success", "videoURL": CLIP}, TaskState.SUCCEEDED),
        ({"status": "processing", "videoURL": CLIP}, TaskState.SUCCEEDED),  # a video: finished
        ({"status": "processing"}, TaskState.FAILED),
    ],
)
def test_runware_first_terminal_word_wins(item: dict[str, Any], state: TaskState) -> None:
    envelope = runware.Envelope.read(
        {
            "data": [{"taskUUID": "t", **item}],
            "errors": [{"taskUUID": "t", "code": "providerError", "message": "late failure"}],
        }
    )
    assert envelope is not None
    assert runware.collect(envelope, ["t"])["t"].state is state


@pytest.mark.anyio
async def test_runware_errors_are_scoped_to_their_task(session: aiohttp.ClientSession) -> None:
    ok, bad, unknown = (str(uuid.uuid4()) for _ in range(3))
    body = {
        "data": [
            {"taskType": "videoInference", "taskUUID": ok, "status": "processing"},
            {
                "taskType": "videoInference",
                "taskUUID": "someone-elses",
                "status": "success",
                "videoURL": CLIP,
            },
        ],
        "errors": [
            {
                "code": "contentModerationFailed",
                "message": "flagged",
                "taskType": "getResponse",
                "taskUUID": bad,
            }
        ],
    }
    async with canned(answer(400, body)) as server:
        statuses = await RunwareProvider(config_for("runware", server.base_url), session).poll(
            [ok, bad, unknown]
        )
    assert set(statuses) == {ok, bad}
    assert statuses[ok].state is TaskState.RUNNING
    assert (statuses[bad].state, statuses[bad].failure_kind) == (TaskState.FAILED, FailureKind.MODERATION)
    assert "flagged" in (statuses[bad].failure_message or "")


@pytest.mark.anyio
async def test_runware_unscoped_error_fails_the_request(session: aiohttp.ClientSession) -> None:
    body = {"errors": [{"code": "invalidApiKey", "message": "Invalid API key", "taskType": "authentication"}]}
    async with canned(answer(401, body)) as server:
        with pytest.raises(TerminalError) as caught:
            await RunwareProvider(config_for("runware", server.base_url), session).poll([str(uuid.uuid4())])
    assert caught.value.kind is FailureKind.AUTH
    assert "Invalid API key" in str(caught.value)


@pytest.mark.anyio
async def test_runware_conflict_means_already_submitted(session: aiohttp.ClientSession) -> None:
    request = make_request("runware")
    handle = runware.build_task(request)["taskUUID"]
    conflict = {"errors": [{"code": "conflictTaskUUID", "message": "exists", "taskUUID": handle}]}
    async with canned(
        in_turn(answer(200, {"data": [{"taskUUID": handle}]}), answer(400, conflict))
    ) as server:
        provider = RunwareProvider(config_for("runware", server.base_url), session)
        first = await provider.submit(request)
        second = await provider.submit(request)
    assert (first.handle, first.already_existed) == (handle, False)
    assert (second.handle, second.already_existed) == (handle, True)


@pytest.mark.anyio
async def test_runware_poll_splits_only_beyond_the_batch_size(session: aiohttp.ClientSession) -> None:
    handles = [str(uuid.uuid4()) for _ in range(RunwareProvider.max_poll_batch + 1)]
    async with canned(answer(200, {"data": []})) as server:
        await RunwareProvider(config_for("runware", server.base_url), session).poll(handles)
    assert [len(seen.body) for seen in server.seen] == [RunwareProvider.max_poll_batch, 1]


# --- Runway ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("PENDING", TaskState.QUEUED),
        ("THROTTLED", TaskState.QUEUED),
        ("RUNNING", TaskState.RUNNING),
        ("SUCCEEDED", TaskState.SUCCEEDED),
        ("FAILED", TaskState.FAILED),
        ("CANCELLED", TaskState.CANCELLED),
        ("ARCHIVED", TaskState.PENDING),
    ],
)
def test_runway_status_words(word: str, state: TaskState) -> None:
    assert runway.parse_task("d", {"id": "d", "status": word}).state is state


def test_runway_success_and_cost() -> None:
    data = {"status": "SUCCEEDED", "output": [CLIP + "?_jwt=abc"], "cost": {"credits": 25}}
    status = runway.parse_task("d", data)
    assert status.output_url == CLIP + "?_jwt=abc"
    assert status.cost_usd == pytest.approx(0.25)


def test_runway_estimate_is_not_a_cost() -> None:
    data = {"status": "RUNNING", "progress": 1.7, "estimatedCost": {"credits": 25}}
    status = runway.parse_task("d", data)
    assert (status.cost_usd, status.progress) == (None, 1.0)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("SAFETY.INPUT.IMAGE", FailureKind.MODERATION),
        ("SAFETY.OUTPUT.VIDEO", FailureKind.MODERATION),
        ("ASSET.INVALID", FailureKind.INPUT),
        ("INTERNAL.BAD_OUTPUT.CODE01", FailureKind.PROVIDER),
        ("INTERNAL", FailureKind.PROVIDER),
        (None, FailureKind.PROVIDER),
    ],
)
def test_runway_failure_codes(code: str | None, kind: FailureKind) -> None:
    data = {"status": "FAILED", "failure": "it failed", "failureCode": code, "cost": {"credits": 0}}
    status = runway.parse_task("d", data)
    assert (status.state, status.failure_kind, status.cost_usd) == (TaskState.FAILED, kind, 0.0)
    assert "it failed" in (status.failure_message or "")


# --- the same leniency over a real socket ---------------------------------------------------------


@pytest.mark.anyio
async def test_aiml_video_array_over_the_wire(session: aiohttp.ClientSession) -> None:
    done = {
        "id": "g",
        "status": "completed",
        "video": [CLIP],
        "error": None,
        "meta": {"usage": {"credits_used": "1000000"}},
    }
    async with canned(in_turn(answer(200, {"id": "g", "status": "waiting"}), answer(200, done))) as server:
        provider = AimlApiProvider(config_for("aimlapi", server.base_url), session)
        first = (await provider.poll(["g"]))["g"]
        second = (await provider.poll(["g"]))["g"]
    assert first.state is TaskState.QUEUED
    assert (second.state, second.output_url, second.cost_usd) == (TaskState.SUCCEEDED, CLIP, 0.5)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("provider_cls", "body"),
    [
        (AimlApiProvider, {"id": "h", "status": "thinking"}),
        (RunwayProvider, {"id": "h", "status": "DREAMING"}),
        (RunwareProvider, {"data": [{"taskUUID": "h", "status": "dreaming"}]}),
    ],
)
async def test_unknown_status_over_the_wire_is_pending(
    session: aiohttp.ClientSession, provider_cls: Any, body: dict[str, Any]
) -> None:
    async with canned(answer(200, body)) as server:
        provider = provider_cls(config_for(provider_cls.name, server.base_url), session)
        status = (await provider.poll(["h"]))["h"]
    assert status.state is TaskState.PENDING
    assert status.raw_status.lower() in {"thinking", "dreaming"}
