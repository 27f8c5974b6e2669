"""Conformance with AIML's official SDK (``aimlapi-sdk-python``): its generate-with-polling helper.

The helper posts to ``/v2/video/generations``, polls ``?generation_id=`` while the status is
``queued`` or ``generating``, and returns the final payload (or downloads ``video.url``). It has
no ``image_url`` parameter, so the test passes it through ``extra_body``. Skipped when the SDK
is not installed (it is a dev extra).
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import IMAGE, assert_mp4

aimlapi = pytest.importorskip("aimlapi")

pytestmark = pytest.mark.anyio

FAST = 0.002


async def generate(sim: Simulator, prompt: str, **kwargs: Any) -> Any:
    async with aimlapi.AsyncAIMLAPI(
        api_key=sim.keys["aimlapi"], base_url=sim.base_url, max_retries=0
    ) as client:
        return await client.videos.generate_with_polling(
            model="runway/gen4_turbo",
            prompt=prompt,
            duration=5,
            seed=7,
            poll_interval=0.02,
            extra_body={"image_url": IMAGE},
            **kwargs,
        )


async def test_generate_with_polling_completes(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim:
        seen: list[str] = []
        result = await generate(sim, "a harbor at dawn", status_callback=lambda p: seen.append(p["status"]))
    assert result["status"] == "completed"
    assert result["meta"]["usage"]["credits_used"] == 500_000
    assert result["video"]["url"].startswith(sim.base_url + "/files/")
    assert seen[0] == "queued" and seen[-1] == "completed"


async def test_generate_with_polling_downloads_the_clip(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim:
        data = await generate(sim, "a harbor at dusk", return_bytes=True)
    assert isinstance(data, bytes)
    assert_mp4(data)


async def test_moderation_ends_the_polling_with_an_error_payload(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim:
        result = await generate(sim, "[sim:moderate] a harbor")
    assert result["status"] == "error"
    assert result["error"]["name"] == "ModerationError"
