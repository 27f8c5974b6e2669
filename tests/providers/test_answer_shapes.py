"""Answer shapes from the providers' docs and official SDKs (issue 10), each read by its adapter.

Sources are named beside each case. Loopback tests at the end drive the simulator's knobs for the
same shapes (AIML ``generation_id`` only, Runway failure codes) so adapter and simulator meet.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import pytest

from runner.errors import FailureKind
from runner.providers import aimlapi, runware, runway
from runner.providers.base import Provider, TaskState, TaskStatus
from runner.providers.registry import build_provider, provider_config_from_env, simulated_config
from tests.conftest import TEST_TIME_SCALE
from tests.providers.helpers import make_request

CLIP = "https://cdn.example/x.mp4"
SimFactory = Callable[..., AbstractAsyncContextManager[Any]]
FAST = TEST_TIME_SCALE / 5


# --- AIML ------------------------------------------------------------------------------------------
# aimlapi-sdk-python aimlapi/resources/videos.py, _extract_generation_id: generation_id, then id.


@pytest.mark.parametrize(
    ("data", "handle"),
    [
        ({"id": "gen-7f3a", "status": "queued"}, "gen-7f3a"),  # docs.aimlapi.com runway/gen4_turbo
        ({"generation_id": "gen-9b1c", "status": "queued"}, "gen-9b1c"),  # SDK: some models
        ({"generation_id": "gen-9b1c", "id": "other", "status": "queued"}, "gen-9b1c"),  # SDK order
        ({"status": "queued"}, None),
        ({"generation_id": "", "id": "gen-7f3a"}, "gen-7f3a"),
    ],
)
def test_aiml_handle_from_generation_id_then_id(data: dict[str, Any], handle: str | None) -> None:
    assert aimlapi.generation_handle(data) == handle


@pytest.mark.parametrize(
    ("usage", "usd"),
    [
        # providers.md §1: credits_used 390000 <-> usd_spent 0.195; usd_spent wins when present
        ({"credits_used": 390_000, "usd_spent": 0.195}, 0.195),
        ({"credits_used": 500_000, "usd_spent": 0.3}, 0.3),
        ({"credits_used": 500_000}, 0.25),  # docs example: USD = credits / 2,000,000
        ({"usd_spent": "0.195"}, 0.195),
        ({}, None),
    ],
)
def test_aiml_cost_prefers_usd_spent(usage: dict[str, Any], usd: float | None) -> None:
    data = {"status": "completed", "video": {"url": CLIP}, "meta": {"usage": usage}}
    cost = aimlapi.parse_generation("g", data).cost_usd
    assert cost == (pytest.approx(usd) if usd is not None else None)


# --- Runway ----------------------------------------------------------------------------------------
# Failure codes: runwayml/skills rw-api-reference ([H]) and third-party clients ([L]), providers.md §3.


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        ("SAFETY.INPUT.IMAGE", FailureKind.MODERATION, False),
        ("SAFETY.INPUT.TEXT", FailureKind.MODERATION, False),
        ("SAFETY.OUTPUT.VIDEO", FailureKind.MODERATION, False),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", FailureKind.MODERATION, False),
        ("INTERNAL", FailureKind.PROVIDER, True),
        ("INTERNAL.BAD_OUTPUT", FailureKind.PROVIDER, True),
        ("INTERNAL.BAD_OUTPUT.CODE01", FailureKind.PROVIDER, True),
        ("INPUT_PREPROCESSING.INTERNAL", FailureKind.PROVIDER, True),
        ("THIRD_PARTY.UNAVAILABLE", FailureKind.PROVIDER, True),
        ("ASSET.INVALID", FailureKind.INPUT, False),
        ("INPUT.INVALID", FailureKind.INPUT, False),
        ("SOMETHING.NEW", FailureKind.PROVIDER, False),
    ],
)
def test_runway_failure_codes(code: str, kind: FailureKind, retryable: bool) -> None:
    data = {"id": "t", "status": "FAILED", "failure": "why", "failureCode": code, "cost": {"credits": 0}}
    status = runway.parse_task("t", data)
    assert (status.state, status.failure_kind, status.retryable) == (TaskState.FAILED, kind, retryable)
    assert status.failure_message is not None and code in status.failure_message


def test_runway_retryable_only_when_nothing_was_billed() -> None:
    billed = {"status": "FAILED", "failureCode": "INTERNAL", "cost": {"credits": 25}}
    no_cost_field = {"status": "FAILED", "failureCode": "INTERNAL"}
    assert not runway.parse_task("t", billed).retryable
    assert runway.parse_task("t", no_cost_field).retryable
    assert not runway.parse_task("t", {"status": "SUCCEEDED", "output": [CLIP]}).retryable


def test_runway_organization_shape() -> None:
    # runwayml SDK types/organization_retrieve_response.py: tier.models[m], usage.models[m]
    data = {
        "creditBalance": 1234,
        "tier": {
            "maxMonthlyCreditSpend": 10000,
            "models": {"gen4_turbo": {"maxConcurrentGenerations": 2, "maxDailyGenerations": 50}},
        },
        "usage": {"models": {"gen4_turbo": {"dailyGenerations": 47}}},
    }
    account = runway.parse_organization(data, "gen4_turbo")
    assert (account.max_concurrent, account.max_daily, account.used_today) == (2, 50, 47)
    assert account.balance_usd == pytest.approx(12.34)
    unlimited = runway.parse_organization({"tier": {"models": {}}, "usage": {}}, "gen4_turbo")
    assert (unlimited.max_concurrent, unlimited.max_daily, unlimited.balance_usd) == (None, None, None)


# --- Runware ---------------------------------------------------------------------------------------
# REST SDK client.py _maybe_raise_item_errors: code/message at the top or under "error".


@pytest.mark.parametrize(
    ("item", "kind", "text"),
    [
        (
            {"status": "error", "error": {"code": "invalidFrameImages", "message": "cannot fetch"}},
            FailureKind.INPUT,
            "invalidFrameImages: cannot fetch",
        ),
        (
            {"status": "error", "code": "invalidPositivePrompt", "message": "too long"},
            FailureKind.INPUT,
            "invalidPositivePrompt: too long",
        ),
        (
            {"status": "error", "error": {"code": "contentModerated", "message": "flagged"}},
            FailureKind.MODERATION,
            "contentModerated: flagged",
        ),
        ({"status": "error", "error": "upstream failed"}, FailureKind.PROVIDER, "upstream failed"),
    ],
)
def test_runware_error_items_nested_or_flat(item: dict[str, Any], kind: FailureKind, text: str) -> None:
    for parse in (runware.parse_item, runware.parse_error):
        status = parse("t", {"taskUUID": "t", **item})
        assert (status.state, status.failure_kind, status.failure_message) == (TaskState.FAILED, kind, text)


@pytest.mark.parametrize(
    ("item", "state"),
    [
        ({"videoURL": CLIP}, TaskState.SUCCEEDED),  # REST SDK: a videoURL means done
        ({"status": "success", "videoURL": CLIP}, TaskState.SUCCEEDED),  # docs' word
        ({"status": "completed", "videoURL": CLIP}, TaskState.SUCCEEDED),
        ({"status": "processing", "videoURL": CLIP}, TaskState.SUCCEEDED),
        ({"status": "error", "videoURL": CLIP}, TaskState.FAILED),  # the status says error
        ({"status": "processing"}, TaskState.RUNNING),
    ],
)
def test_runware_video_url_means_finished_unless_error(item: dict[str, Any], state: TaskState) -> None:
    status = runware.parse_item("t", {"taskUUID": "t", **item})
    assert status.state is state
    assert status.output_url == (CLIP if state is TaskState.SUCCEEDED else None)


def test_runware_nested_conflict_still_means_landed() -> None:
    envelope = runware.Envelope.read(
        {"errors": [{"taskUUID": "t", "status": "error", "error": {"code": "conflictTaskUUID"}}]}
    )
    assert envelope is not None and envelope.conflict("t")


# --- base URL variables ----------------------------------------------------------------------------
# aimlapi-sdk-python _client.py: _BASE_URL_ENV_VARS = ("AIML_API_BASE", "AIMLAPI_API_BASE"),
# default "https://api.aimlapi.com/v1"; its video calls keep only the origin (_video_api_url).


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"AIML_API_BASE": "https://api.aimlapi.com/v1"}, "https://api.aimlapi.com"),
        ({"AIMLAPI_API_BASE": "http://127.0.0.1:9000/v1/"}, "http://127.0.0.1:9000"),
        (
            {"AIMLAPI_BASE_URL": "https://proxy.example", "AIML_API_BASE": "https://x.example/v1"},
            "https://proxy.example",
        ),
        ({}, "https://api.aimlapi.com"),
    ],
)
def test_aiml_base_url_variables(env: dict[str, str], url: str) -> None:
    config = provider_config_from_env("aimlapi", {"AIML_API_KEY": "aiml-key-3f9c2b7d", **env})
    assert config.base_url == url
    assert config.key_source == "AIML_API_KEY"


def test_sdk_base_variable_is_checked_like_the_others() -> None:
    from runner.errors import ConfigError

    with pytest.raises(ConfigError, match="AIML_API_BASE"):
        provider_config_from_env(
            "aimlapi", {"AIML_API_KEY": "aiml-key-3f9c2b7d", "AIML_API_BASE": "http://evil.example/v1"}
        )


# --- over loopback ---------------------------------------------------------------------------------


def connect(sim: Any, name: str, session: aiohttp.ClientSession) -> Provider:
    return build_provider(simulated_config(name, sim.base_url, sim.keys[name]), session)


async def final(provider: Provider, handle: str) -> TaskStatus:
    with anyio.fail_after(5):
        while True:
            status = (await provider.poll([handle]))[handle]
            if status.state.terminal:
                return status
            await anyio.sleep(max(provider.min_poll_interval * FAST, 0.01))


@pytest.mark.anyio
async def test_aiml_generation_id_only_over_loopback(
    sim_factory: SimFactory, session: aiohttp.ClientSession
) -> None:
    async with sim_factory(time_scale=FAST, aiml_generation_id_only=True) as sim:
        provider = connect(sim, "aimlapi", session)
        submitted = await provider.submit(make_request("aimlapi"))
        async with session.get(
            f"{sim.base_url}/v2/video/generations",
            params={"generation_id": submitted.handle},
            headers={"Authorization": f"Bearer {sim.keys['aimlapi']}"},
        ) as resp:
            raw = await resp.json()
        assert "id" not in raw and raw["generation_id"] == submitted.handle  # the shape is the SDK's
        status = await final(provider, submitted.handle)
        assert status.state is TaskState.SUCCEEDED
        assert sim.stats()["providers"]["aimlapi"]["accepted"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        ("INTERNAL", FailureKind.PROVIDER, True),
        ("THIRD_PARTY.UNAVAILABLE", FailureKind.PROVIDER, True),
        ("SAFETY.INPUT.TEXT", FailureKind.MODERATION, False),
        ("ASSET.INVALID", FailureKind.INPUT, False),
    ],
)
async def test_runway_failure_code_knob_over_loopback(
    sim_factory: SimFactory, session: aiohttp.ClientSession, code: str, kind: FailureKind, retryable: bool
) -> None:
    async with sim_factory(time_scale=FAST, runway_fail_first=1, runway_failure_code=code) as sim:
        provider = connect(sim, "runway", session)
        request = make_request("runway")
        first = await final(provider, (await provider.submit(request)).handle)
        assert (first.state, first.failure_kind, first.retryable) == (TaskState.FAILED, kind, retryable)
        assert first.cost_usd == 0
        again = await final(provider, (await provider.submit(request)).handle)  # a new task
        assert again.state is TaskState.SUCCEEDED
        stats = sim.stats()["providers"]["runway"]
        assert (stats["accepted"], stats["failed"], stats["completed"]) == (2, 1, 1)
        assert stats["billed_usd"] == pytest.approx(again.cost_usd)
