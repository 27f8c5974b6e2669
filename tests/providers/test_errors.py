"""Error mapping (DESIGN §4) over real sockets: HTTP statuses, lost answers, refused connections."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from runner.errors import (
    AmbiguousSubmitError,
    FailureKind,
    NotSentError,
    ProviderError,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.base import Provider
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider
from tests.providers.helpers import TEST_KEY, answer, canned, config_for, hang, make_request

pytestmark = pytest.mark.anyio

CLASSES: dict[str, Any] = {"aimlapi": AimlApiProvider, "runware": RunwareProvider, "runway": RunwayProvider}
PROVIDERS = list(CLASSES)


def adapter(name: str, base_url: str, session: aiohttp.ClientSession, **kw: Any) -> Provider:
    provider: Provider = CLASSES[name](config_for(name, base_url, **kw), session)
    return provider


def error_body(name: str, message: str) -> dict[str, Any]:
    """Each provider's error envelope (providers.md)."""
    if name == "runware":
        return {"errors": [{"code": "someError", "message": message, "taskType": "videoInference"}]}
    if name == "aimlapi":
        return {"message": message, "path": "/v2/video/generations", "statusCode": "400", "requestId": "r1"}
    return {"error": message}


TERMINAL = [
    ("aimlapi", 400, FailureKind.INPUT),
    ("aimlapi", 401, FailureKind.AUTH),
    ("aimlapi", 403, FailureKind.CREDITS),
    ("runware", 400, FailureKind.INPUT),
    ("runware", 401, FailureKind.AUTH),
    ("runware", 402, FailureKind.CREDITS),
    ("runway", 400, FailureKind.INPUT),
    ("runway", 401, FailureKind.AUTH),
]


@pytest.mark.parametrize(("name", "status", "kind"), TERMINAL)
async def test_terminal_statuses(
    session: aiohttp.ClientSession, name: str, status: int, kind: FailureKind
) -> None:
    async with canned(answer(status, error_body(name, "promptImage: must be a URL"))) as server:
        with pytest.raises(TerminalError) as caught:
            await adapter(name, server.base_url, session).submit(make_request(name))
    error = caught.value
    assert error.kind is kind
    assert (error.provider, error.status) == (name, status)
    assert error.url is not None and error.url.startswith(server.base_url)
    assert "promptImage: must be a URL" in str(error)
    assert TEST_KEY not in str(error)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_transient_on_submit_and_poll(
    session: aiohttp.ClientSession, name: str, status: int
) -> None:
    async with canned(answer(status, "<html>Bad gateway</html>")) as server:
        provider = adapter(name, server.base_url, session)
        with pytest.raises(TransientError) as on_submit:
            await provider.submit(make_request(name))
        with pytest.raises(TransientError) as on_poll:
            await provider.poll(["00000000-0000-4000-8000-000000000000"])
    for error in (on_submit.value, on_poll.value):
        assert type(error) is TransientError
        assert error.status == status
        assert "Bad gateway" in str(error)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), (None, None)]
)
async def test_429_carries_retry_after(
    session: aiohttp.ClientSession, name: str, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header else None
    async with canned(answer(429, {"message": "too many"}, headers)) as server:
        with pytest.raises(RateLimitedError) as caught:
            await adapter(name, server.base_url, session).submit(make_request(name))
    assert caught.value.retry_after == expected
    assert caught.value.status == 429


@pytest.mark.parametrize("name", PROVIDERS)
async def test_closed_port_is_not_sent(session: aiohttp.ClientSession, name: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NotSentError) as caught:
        await adapter(name, f"http://127.0.0.1:{port}", session).submit(make_request(name))
    assert caught.value.provider == name
    assert str(port) in str(caught.value)


@pytest.mark.parametrize("name", ["aimlapi", "runway"])
async def test_lost_answer_on_submit_is_ambiguous(session: aiohttp.ClientSession, name: str) -> None:
    async with canned(hang) as server:
        provider = adapter(name, server.base_url, session, request_timeout=0.1)
        with pytest.raises(AmbiguousSubmitError) as caught:
            await provider.submit(make_request(name))
        assert len(server.seen) == 1  # it did arrive: that is exactly why it is ambiguous
    assert "may have landed" in str(caught.value)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_lost_answer_on_poll_is_transient(session: aiohttp.ClientSession, name: str) -> None:
    async with canned(hang) as server:
        provider = adapter(name, server.base_url, session, request_timeout=0.1)
        with pytest.raises(TransientError) as caught:
            await provider.poll(["00000000-0000-4000-8000-000000000000"])
    assert type(caught.value) is TransientError


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("body", ["<html>maintenance</html>", "", "[1, 2]"])
async def test_unreadable_2xx(session: aiohttp.ClientSession, name: str, body: str) -> None:
    async with canned(answer(200, body)) as server:
        provider = adapter(name, server.base_url, session)
        with pytest.raises(AmbiguousSubmitError, match="unreadable answer"):
            await provider.submit(make_request(name))
        with pytest.raises(TransientError, match="unreadable answer"):
            await provider.poll(["00000000-0000-4000-8000-000000000000"])


@pytest.mark.parametrize("name", PROVIDERS)
async def test_json_without_the_expected_fields(session: aiohttp.ClientSession, name: str) -> None:
    async with canned(answer(200, {"unexpected": True})) as server:
        with pytest.raises(ProviderError, match="unreadable answer"):
            await adapter(name, server.base_url, session).submit(make_request(name))


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_echoed_key_is_scrubbed(session: aiohttp.ClientSession, name: str) -> None:
    async with canned(
        answer(401, {"message": f"bad key {TEST_KEY}", "error": f"bad key {TEST_KEY}"})
    ) as server:
        with pytest.raises(TerminalError) as caught:
            await adapter(name, server.base_url, session).submit(make_request(name))
    assert TEST_KEY not in str(caught.value)
    assert TEST_KEY not in repr(caught.value.args)


@pytest.mark.parametrize("name", ["aimlapi", "runway"])
async def test_poll_of_an_unknown_task_is_a_failed_status(session: aiohttp.ClientSession, name: str) -> None:
    async with canned(answer(404, {"error": "Task not found"})) as server:
        statuses = await adapter(name, server.base_url, session).poll(["nope"])
    assert statuses["nope"].state == "failed"
    assert statuses["nope"].failure_kind is FailureKind.PROVIDER


async def test_runware_moderation_refusal_on_submit(session: aiohttp.ClientSession) -> None:
    body = {
        "errors": [
            {"code": "contentModerationFailed", "message": "prompt flagged", "taskType": "videoInference"}
        ]
    }
    async with canned(answer(400, body)) as server:
        with pytest.raises(TerminalError) as caught:
            await adapter("runware", server.base_url, session).submit(make_request("runware"))
    assert caught.value.kind is FailureKind.MODERATION


async def test_redirects_are_not_followed(session: aiohttp.ClientSession) -> None:
    async with canned(answer(301, "", {"Location": "https://elsewhere.example/v1"})) as server:
        with pytest.raises(TerminalError, match="redirect"):
            await adapter("runway", server.base_url, session).submit(make_request("runway"))
        assert len(server.seen) == 1
