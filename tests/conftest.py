"""Shared fixtures. Every HTTP test talks to the real simulator over loopback (port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from runner.simulator import SimConfig, Simulator

#: Time scale for tests: a 60 s generation lasts 0.6 s.
TEST_TIME_SCALE = 0.01

#: The type of the ``sim_factory`` fixture, for annotations in test modules.
SimFactory = Callable[..., AbstractAsyncContextManager["Simulator"]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim_factory() -> Callable[..., AbstractAsyncContextManager[Simulator]]:
    """``async with sim_factory(profile="flaky", seed=3, **knobs) as sim:`` — a fresh simulator."""
    from runner.simulator import SimConfig, running_simulator

    def make(
        profile: str = "clean", *, time_scale: float = TEST_TIME_SCALE, seed: int = 1, **knobs: Any
    ) -> AbstractAsyncContextManager[Simulator]:
        config: SimConfig = SimConfig.from_profile(profile, time_scale=time_scale, seed=seed, **knobs)
        return running_simulator(config)

    return make


@pytest.fixture
async def sim(
    sim_factory: Callable[..., AbstractAsyncContextManager[Simulator]],
) -> AsyncIterator[Simulator]:
    """A clean simulator at the test time scale."""
    async with sim_factory() as s:
        yield s
