"""Conformance with the official ``runwayml`` SDK: if its parser and waiter accept us, so would Runway's.

The SDK's ``wait_for_task_output`` sleeps ``POLL_TIME ± POLL_JITTER/2`` seconds (6 ± 1.5 s) before
each poll and raises ``TaskFailedError`` on FAILED or CANCELLED; its module constants are shortened
here so the test runs at the simulator's time scale.
"""

from __future__ import annotations

import aiohttp
import pytest
import runwayml
from runwayml import AsyncRunwayML, TaskFailedError
from runwayml.lib import polling

from runner.simulator import Simulator
from tests.conftest import SimFactory
from tests.simulator.helpers import IMAGE, PNG_DATA_URI, assert_mp4, fetch

pytestmark = pytest.mark.anyio

FAST = 0.002


@pytest.fixture(autouse=True)
def quick_sdk_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "POLL_TIME", 0.02)
    monkeypatch.setattr(polling, "POLL_JITTER", 0.0)


def client(sim: Simulator, key: str | None = None) -> AsyncRunwayML:
    return AsyncRunwayML(api_key=key or sim.keys["runway"], base_url=sim.base_url, max_retries=0)


async def test_create_wait_and_download(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, client(sim) as runway:
        created = await runway.image_to_video.create(
            model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720", duration=5, prompt_text="harbor at dawn"
        )
        assert created.to_dict()["estimatedCost"] == {"credits": 25}  # typed as id-only by the SDK
        done = await created.wait_for_task_output()
        assert done.status == "SUCCEEDED"
        assert done.id == created.id and done.cost.credits == 25
        async with aiohttp.ClientSession() as session:
            code, data, _ = await fetch(session, done.output[0])
        assert code == 200
        assert_mp4(data)


async def test_throttled_and_running_tasks_parse(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_concurrency=1) as sim, client(sim) as runway:
        first = await runway.image_to_video.create(
            model="gen4_turbo", prompt_image=IMAGE, ratio="960:960", seed=1
        )
        second = await runway.image_to_video.create(
            model="gen4_turbo",
            prompt_image=[{"uri": PNG_DATA_URI, "position": "first"}],
            ratio="960:960",
            seed=2,
        )
        assert (await runway.tasks.retrieve(first.id)).status in ("PENDING", "RUNNING")
        throttled = await runway.tasks.retrieve(second.id)
        assert throttled.status == "THROTTLED"
        assert throttled.estimated_cost.credits == 50  # default duration 10 s
        await runway.tasks.delete(second.id)
        assert (await runway.tasks.retrieve(second.id)).status == "CANCELLED"


async def test_moderation_surfaces_as_task_failed_error(sim_factory: SimFactory) -> None:
    async with sim_factory(time_scale=FAST) as sim, client(sim) as runway:
        created = await runway.image_to_video.create(
            model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720", duration=5, prompt_text="[sim:moderate]"
        )
        with pytest.raises(TaskFailedError) as caught:
            await created.wait_for_task_output()
    details = caught.value.task_details
    assert details.status == "FAILED"
    assert details.failure_code == "SAFETY.INPUT.IMAGE"
    assert details.cost.credits == 0


async def test_organization_retrieve_parses(sim_factory: SimFactory) -> None:
    async with sim_factory(runway_concurrency=6) as sim, client(sim) as runway:
        org = await runway.organization.retrieve()
    assert org.tier.models["gen4_turbo"].max_concurrent_generations == 6
    assert org.credit_balance == sim.config.runway_credits
    assert org.usage.models["gen4_turbo"].daily_generations == 0


async def test_sdk_errors_map_to_its_exceptions(sim: Simulator) -> None:
    async with client(sim, key="wrong") as runway:
        with pytest.raises(runwayml.AuthenticationError):
            await runway.organization.retrieve()
    async with client(sim) as runway:
        with pytest.raises(runwayml.BadRequestError) as caught:
            await runway.image_to_video.create(
                model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720", prompt_text="x" * 1001
            )
        assert "promptText" in str(caught.value)
        with pytest.raises(runwayml.NotFoundError):
            await runway.tasks.retrieve("00000000-0000-4000-8000-000000000000")
