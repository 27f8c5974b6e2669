"""Each adapter against the project's simulator over loopback: the whole life of a take, and its faults.

The simulator imports nothing from the adapters (DESIGN §6), so a misreading of providers.md in
one is not silently shared by the other: these tests are where the two readings meet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import pytest

from runner.errors import (
    AmbiguousSubmitError,
    FailureKind,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.providers.base import Provider, TaskState, TaskStatus
from runner.providers.registry import build_provider, simulated_config
from tests.conftest import TEST_TIME_SCALE
from tests.providers.helpers import make_request

pytestmark = pytest.mark.anyio

PROVIDERS = ["aimlapi", "runware", "runway"]
SimFactory = Callable[..., AbstractAsyncContextManager[Any]]
#: Faster than the suite's default scale, for tests that wait for whole generations (~0.1 s each).
FAST = TEST_TIME_SCALE / 5


@pytest.fixture
async def fast_sim(sim_factory: SimFactory) -> AsyncIterator[Any]:
    async with sim_factory(time_scale=FAST) as sim:
        yield sim


def connect(sim: Any, name: str, session: aiohttp.ClientSession, **kw: Any) -> Provider:
    key = kw.pop("key", sim.keys[name])
    return build_provider(simulated_config(name, sim.base_url, key, **kw), session)


async def until_terminal(
    provider: Provider, handles: Sequence[str], limit: float = 5.0
) -> Mapping[str, TaskStatus]:
    """Poll as the provider allows (its interval on the fast clock) until every handle is terminal."""
    done: dict[str, TaskStatus] = {}
    pause = max(provider.min_poll_interval * FAST * 1.2, 0.01)
    with anyio.fail_after(limit):
        while len(done) < len(handles):
            waiting = [h for h in handles if h not in done]
            for start in range(0, len(waiting), provider.max_poll_batch):
                answers = await provider.poll(waiting[start : start + provider.max_poll_batch])
                done.update({h: s for h, s in answers.items() if s.state.terminal})
            await anyio.sleep(pause)
    return done


def stats_of(sim: Any, name: str) -> dict[str, Any]:
    stats: dict[str, Any] = sim.stats()["providers"][name]
    return stats


@pytest.mark.parametrize(("name", "duration"), [("aimlapi", 5), ("runware", 6), ("runway", 5)])
async def test_submit_poll_download_and_cost(
    fast_sim: Any, session: aiohttp.ClientSession, name: str, duration: int
) -> None:
    sim = fast_sim
    provider = connect(sim, name, session)
    submitted = await provider.submit(make_request(name, duration=duration, seed=29718))
    status = (await until_terminal(provider, [submitted.handle]))[submitted.handle]
    assert status.state is TaskState.SUCCEEDED, status
    assert status.output_url
    async with session.get(status.output_url) as resp:
        assert resp.status == 200
        clip = await resp.read()
    assert clip[4:8] == b"ftyp"
    assert status.cost_usd is not None
    assert status.cost_usd == pytest.approx(stats_of(sim, name)["billed_usd"])
    expected = {"runware": 0.3042, "runway": 5 * duration * 0.01}
    if name in expected:
        assert status.cost_usd == pytest.approx(expected[name])
    if name == "runware":
        assert status.seed == 29718


async def test_runware_polls_many_tasks_in_one_request(fast_sim: Any, session: aiohttp.ClientSession) -> None:
    sim = fast_sim
    provider = connect(sim, "runware", session)
    handles = [(await provider.submit(make_request("runware", seed=seed))).handle for seed in (1, 2, 3, 4)]
    before = stats_of(sim, "runware")
    first = await provider.poll(handles)
    after = stats_of(sim, "runware")
    assert set(first) == set(handles)
    assert after["poll_requests"] - before["poll_requests"] == 1
    assert after["polls"] - before["polls"] == 4
    statuses = await until_terminal(provider, handles)
    assert {s.state for s in statuses.values()} == {TaskState.SUCCEEDED}


async def test_runware_resend_meets_conflict_and_bills_once(sim: Any, session: aiohttp.ClientSession) -> None:
    provider = connect(sim, "runware", session)
    request = make_request("runware")
    first = await provider.submit(request)
    again = await provider.submit(request)
    assert (first.already_existed, again.already_existed) == (False, True)
    assert again.handle == first.handle
    assert stats_of(sim, "runware")["accepted"] == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_moderation_is_a_failed_status(sim: Any, session: aiohttp.ClientSession, name: str) -> None:
    provider = connect(sim, name, session)
    submitted = await provider.submit(make_request(name, prompt="A dragon [sim:moderate] attacks"))
    status = (await until_terminal(provider, [submitted.handle]))[submitted.handle]
    assert status.state is TaskState.FAILED
    assert status.failure_kind is FailureKind.MODERATION, status
    assert status.output_url is None


@pytest.mark.parametrize("name", PROVIDERS)
async def test_wrong_key_is_terminal_auth(sim: Any, session: aiohttp.ClientSession, name: str) -> None:
    wrong = "sk-wrong-key-0000"
    provider = connect(sim, name, session, key=wrong)
    with pytest.raises(TerminalError) as on_submit:
        await provider.submit(make_request(name))
    with pytest.raises(TerminalError) as on_poll:
        await provider.poll(["00000000-0000-4000-8000-000000000000"])
    for error in (on_submit.value, on_poll.value):
        assert (error.kind, error.status, error.provider) == (FailureKind.AUTH, 401, name)
        assert wrong not in str(error)
        assert sim.base_url in str(error)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_sim_429_is_rate_limited(
    sim_factory: SimFactory, session: aiohttp.ClientSession, name: str
) -> None:
    async with sim_factory(http_429=1.0, retry_after_share=1.0) as sim:
        with pytest.raises(RateLimitedError) as caught:
            await connect(sim, name, session).submit(make_request(name))
    assert caught.value.status == 429
    assert caught.value.retry_after is not None


@pytest.mark.parametrize("name", PROVIDERS)
async def test_sim_5xx_is_transient(
    sim_factory: SimFactory, session: aiohttp.ClientSession, name: str
) -> None:
    async with sim_factory(http_5xx=1.0) as sim:
        provider = connect(sim, name, session)
        with pytest.raises(TransientError) as on_submit:
            await provider.submit(make_request(name))
        with pytest.raises(TransientError):
            await provider.poll(["00000000-0000-4000-8000-000000000000"])
    assert on_submit.value.status is not None and on_submit.value.status >= 500


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("hang_seconds", [0.0, 0.3])
async def test_lost_submit_answer_is_ambiguous(
    sim_factory: SimFactory, session: aiohttp.ClientSession, name: str, hang_seconds: float
) -> None:
    async with sim_factory(submit_lost_answer=1.0, hang_seconds=hang_seconds) as sim:
        provider = connect(sim, name, session, request_timeout=0.1)
        with pytest.raises(AmbiguousSubmitError):
            await provider.submit(make_request(name))
        assert stats_of(sim, name)["accepted"] == 1  # it did land: resending would pay twice


async def test_runware_unknown_task_fails_alone(fast_sim: Any, session: aiohttp.ClientSession) -> None:
    provider = connect(fast_sim, "runware", session)
    known = (await provider.submit(make_request("runware"))).handle
    unknown = "00000000-0000-4000-8000-000000000000"
    statuses = await provider.poll([known, unknown])
    assert not statuses[known].state.terminal
    assert (statuses[unknown].state, statuses[unknown].failure_kind) == (
        TaskState.FAILED,
        FailureKind.PROVIDER,
    )


@pytest.mark.parametrize("name", ["aimlapi", "runway"])
async def test_unknown_task_id_is_failed(sim: Any, session: aiohttp.ClientSession, name: str) -> None:
    statuses = await connect(sim, name, session).poll(["no-such-task"])
    assert statuses["no-such-task"].state is TaskState.FAILED
    assert statuses["no-such-task"].raw_status == "not_found"


async def test_runway_throttled_is_queued(sim_factory: SimFactory, session: aiohttp.ClientSession) -> None:
    async with sim_factory(runway_concurrency=1) as sim:
        provider = connect(sim, "runway", session)
        handles = [(await provider.submit(make_request("runway", seed=seed))).handle for seed in (1, 2)]
        second = (await provider.poll(handles[1:]))[handles[1]]
    assert (second.raw_status, second.state) == ("THROTTLED", TaskState.QUEUED)
    assert second.cost_usd is None  # an estimate is not a cost


async def test_runway_cancel_refunds_the_task(sim: Any, session: aiohttp.ClientSession) -> None:
    """DELETE /v1/tasks/{id} cancels a task in flight; the simulator, like Runway, bills it 0."""
    provider = connect(sim, "runway", session)
    handle = (await provider.submit(make_request("runway", duration=5))).handle
    assert provider.can_cancel
    assert await provider.cancel(handle)
    answers = await provider.poll([handle])
    assert answers[handle].state is TaskState.CANCELLED
    assert await provider.cancel("no-such-task")  # already gone counts as cancelled


@pytest.mark.parametrize("name", ["aimlapi", "runware"])
async def test_providers_without_cancel_say_so(sim: Any, session: aiohttp.ClientSession, name: str) -> None:
    provider = connect(sim, name, session)
    assert not provider.can_cancel
    assert await provider.cancel("any") is False
