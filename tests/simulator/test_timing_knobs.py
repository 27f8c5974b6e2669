"""The benchmark's simulator knobs: uniform generation times and ``/_sim/tasks`` (true timing)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from runner.cli.cmd_simulate import _knob
from runner.errors import ConfigError
from runner.simulator import SimConfig
from runner.simulator.state import World
from tests.conftest import SimFactory


def test_generation_times_follow_the_uniform_knob_whatever_the_duration() -> None:
    config = SimConfig.from_profile("clean", gen_min_s=40.0, gen_max_s=90.0)
    world = World(config, clock=lambda: 0.0)
    runs = [
        world.register("runware", take_id=f"t{i}", duration=d, prompt="p", cost_usd=0.1).run_seconds
        for i, d in enumerate([5, 10] * 100)
    ]
    assert all(40.0 <= r <= 90.0 for r in runs)
    assert min(runs) < 45.0 and max(runs) > 85.0, "spread over the whole range"


def test_without_the_knob_the_duration_model_stays() -> None:
    world = World(SimConfig.from_profile("clean"), clock=lambda: 0.0)
    task = world.register("runware", take_id="t", duration=10, prompt="p", cost_usd=0.1)
    assert 80.0 * 0.85 <= task.run_seconds <= 80.0 * 1.15


@pytest.mark.parametrize("knobs", [{"gen_min_s": 40.0}, {"gen_min_s": 50.0, "gen_max_s": 40.0}])
def test_bad_uniform_knobs_are_refused(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimConfig.from_profile("clean", **knobs)


@pytest.mark.anyio
async def test_sim_tasks_reports_true_timing(sim_factory: SimFactory) -> None:
    async with sim_factory(gen_min_s=40.0, gen_max_s=40.0) as sim:
        world = sim._world
        world.register("aimlapi", take_id="t", duration=5, prompt="p", cost_usd=0.1)
        async with aiohttp.ClientSession() as session, session.get(sim.base_url + "/_sim/tasks") as resp:
            doc = await resp.json()
    (task,) = doc["tasks"]
    assert task["provider"] == "aimlapi"
    assert task["end_at"] - task["start_at"] == pytest.approx(40.0)
    assert doc["now"] >= task["created_at"]


def test_simulate_set_parses_numbers_and_refuses_the_rest() -> None:
    assert _knob("runway_concurrency=20") == ("runway_concurrency", 20)
    assert _knob("gen_min_s=40.5") == ("gen_min_s", 40.5)
    with pytest.raises(ConfigError):
        _knob("url_ttl=soon")
