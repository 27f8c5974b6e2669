"""Shared fixtures. Every HTTP test talks to the real simulator over loopback (port 0)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from runner.simulator import SimConfig, Simulator
    from tests.pgcluster import Cluster

_PG_DATABASES = itertools.count()

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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL server for the whole session (see tests/pgcluster.py)."""
    from tests.pgcluster import running_cluster, server_bin

    if server_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs Debian's postgresql)")
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, empty database on the session's server, for one test."""
    return pg_cluster.create_database(f"t{next(_PG_DATABASES)}")
