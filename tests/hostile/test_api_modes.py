"""The adapters' wire against a hostile API: answers too big, not JSON, or with numbers not to believe.

Each answer must end as an error the caller already knows how to handle — a failed poll
(TransientError, which the poller retries and then gives up on), an ambiguous submit, or a status
whose cost :func:`runner.engine.cost.decide_cost` refuses — and no answer may cost more than
:data:`~runner.providers._http.MAX_BODY` bytes of reading.
"""

from __future__ import annotations

import json
import math
import random
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from runner.clock import ScaledClock
from runner.engine.cost import decide_cost
from runner.engine.meters import RateLimiter
from runner.engine.polling import BatchPoller
from runner.engine.retrying import Backoff, RetryPolicy
from runner.errors import AmbiguousSubmitError, TerminalError, TransientError
from runner.manifest.prices import estimate_usd
from runner.providers._http import MAX_BODY, Wire
from runner.providers.base import Provider
from runner.providers.registry import build_provider
from tests.hostile.server import SAFETY_STOP, HostileServer, hostile_server
from tests.providers.helpers import config_for, make_request

pytestmark = pytest.mark.anyio

PROVIDERS = ("aimlapi", "runware", "runway")


@asynccontextmanager
async def provider_at(hostile: HostileServer, name: str) -> AsyncIterator[Provider]:
    async with aiohttp.ClientSession() as session:
        yield build_provider(config_for(name, hostile.base_url), session)


@asynccontextmanager
async def wire_at(hostile: HostileServer) -> AsyncIterator[Wire]:
    async with aiohttp.ClientSession() as session:
        yield Wire(config_for("runway", hostile.base_url), session)


# -- an endless answer is read up to the cap, no further ---------------------------------------------


async def test_an_endless_error_answer_is_read_only_up_to_the_cap() -> None:
    async with hostile_server("endless-error") as hostile, wire_at(hostile) as wire:
        answer = await wire.call("GET", "/v1/tasks/t1")
        sent = hostile.sent["/v1/tasks/t1"]
    assert answer.status == 502
    assert answer.truncated
    assert answer.size == MAX_BODY, "exactly the cap was kept; the rest was never read"
    assert answer.data is None
    assert sent < SAFETY_STOP, "the connection was dropped, not drained"
    assert isinstance(wire.error(answer), TransientError)


async def test_an_endless_json_poll_answer_is_a_failed_poll_within_bounded_memory() -> None:
    async with hostile_server("endless-json") as hostile, wire_at(hostile) as wire:
        tracemalloc.start()
        try:
            with pytest.raises(TransientError, match=f"body over {MAX_BODY} bytes") as caught:
                await wire.call("GET", "/v1/tasks/t1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        sent = hostile.sent["/v1/tasks/t1"]
    assert caught.value.status == 200
    assert peak < 4 * MAX_BODY, f"peak {peak / 1e6:.1f} MB to read a poll answer"
    assert sent < SAFETY_STOP


async def test_a_gzip_bomb_poll_answer_is_inflated_only_up_to_the_cap() -> None:
    """A few kB on the wire that inflate to 256 MB: the cap counts inflated bytes."""
    async with hostile_server("gzip-bomb") as hostile, wire_at(hostile) as wire:
        tracemalloc.start()
        try:
            with pytest.raises(TransientError, match=f"body over {MAX_BODY} bytes"):
                await wire.call("GET", "/v1/tasks/t1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * MAX_BODY, f"peak {peak / 1e6:.1f} MB to read a poll answer"


async def test_an_endless_json_submit_answer_is_an_ambiguous_submit() -> None:
    async with hostile_server("endless-json") as hostile, provider_at(hostile, "runway") as runway:
        with pytest.raises(AmbiguousSubmitError, match=f"body over {MAX_BODY} bytes"):
            await runway.submit(make_request("runway"))


# -- answers that are not JSON ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["html", "deep-json"])
async def test_a_poll_answered_200_with_something_not_json_is_a_failed_poll(provider: str, mode: str) -> None:
    async with hostile_server(mode) as hostile, provider_at(hostile, provider) as adapter:
        with pytest.raises(TransientError) as caught:
            await adapter.poll([str(uuid.uuid4())])
    assert caught.value.status == 200
    assert caught.value.provider == provider
    assert "not JSON" in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_submit_answered_200_with_html_is_ambiguous(provider: str) -> None:
    async with hostile_server("html") as hostile, provider_at(hostile, provider) as adapter:
        with pytest.raises(AmbiguousSubmitError, match="not JSON"):
            await adapter.submit(make_request(provider))


async def test_the_poller_gives_up_on_a_provider_that_keeps_answering_html() -> None:
    """Not polled forever: after ``max_failures`` failed polls the take gets a TerminalError."""
    max_failures = 3
    clock = ScaledClock(0.001)
    async with hostile_server("html") as hostile, provider_at(hostile, "runway") as runway:
        poller = BatchPoller(
            runway,
            RateLimiter(1000.0, clock),
            clock,
            retry=RetryPolicy(max_failures, float("inf"), Backoff(base=0.01, cap=0.01)),
            rng=random.Random(1),
        )
        async with _running(poller):
            with pytest.raises(TerminalError) as caught:
                await poller.status_at("t1", clock.now())
    assert hostile.hits["html"] == max_failures
    message = str(caught.value)
    assert "runway" in message and "HTTP 200" in message and f"gave up after {max_failures}" in message


@asynccontextmanager
async def _running(poller: BatchPoller) -> AsyncIterator[None]:
    import anyio

    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


# -- numbers not to believe ---------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "-1000", "1e300", "1e999", '"NaN"'])
async def test_a_reported_cost_not_to_believe_leaves_the_estimate_standing(literal: str) -> None:
    async with hostile_server("cost") as hostile, provider_at(hostile, "runway") as runway:
        hostile.cost_literal = literal
        status = (await runway.poll(["t1"]))["t1"]
        assert status.output_url == hostile.url(hostile.result), "the answer was read as a finished task"
    request = make_request("runway")
    estimate = estimate_usd("runway", request.take.model, request.take.duration)
    cost = decide_cost(status.cost_usd, estimate)
    assert (cost.usd, cost.source) == (estimate, "estimated")
    assert math.isfinite(cost.usd)
    json.dumps({"cost_usd": cost.usd}, allow_nan=False)  # what the ledger writes stays strict JSON
