"""AIML API adapter for ``runway/gen4_turbo`` (providers.md §1).

Submit ``POST /v2/video/generations``, poll ``GET /v2/video/generations?generation_id=…``. AIML has
no idempotency key, so a submit is never resent after an ambiguous failure (``resend_safe`` is
False) and every poll covers one task. Answers are read leniently because AIML's own examples
disagree with each other: ``video`` comes as ``{"url": …}`` or as an array of URL strings, and the
status words include ``waiting``/``active`` beside the documented ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from runner.errors import FailureKind, TerminalError
from runner.providers._http import Wire
from runner.providers.base import Account, ProviderConfig, SubmitRequest, Submitted, TaskState, TaskStatus
from runner.providers.shapes import (
    as_dict,
    as_float,
    as_list,
    as_str,
    dig,
    mentions_moderation,
    model_id,
    not_found_status,
)

PATH = "/v2/video/generations"
#: The documented balance query: authenticated, bills nothing (docs.aimlapi.com, "Account Balance",
#: api-references/service-endpoints/account-balance; answer ``{"balance": <credits>, ...}``).
BALANCE_PATH = "/v1/billing/balance"
#: USD per credit: ``credits_used / 2,000,000`` (providers.md §1, [H]).
USD_PER_CREDIT = 1 / 2_000_000

STATES: Mapping[str, TaskState] = {
    "queued": TaskState.QUEUED,
    "waiting": TaskState.QUEUED,
    "generating": TaskState.RUNNING,
    "active": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "error": TaskState.FAILED,
}
_INPUT_WORDS = ("validation", "invalid", "badrequest")


def build_body(request: SubmitRequest) -> dict[str, Any]:
    """The JSON AIML expects for one take; the seed is always explicit."""
    take = request.take
    body: dict[str, Any] = {
        "model": model_id("aimlapi", request),
        "image_url": request.image,
        "aspect_ratio": take.ratio,
        "duration": take.duration,
        "seed": take.seed,
    }
    if take.prompt:
        body["prompt"] = take.prompt
    if request.last_image is not None:
        body["tail_image_url"] = request.last_image
    return body


def video_url(video: object) -> str | None:
    """``video.url``, or the first entry of ``video`` as an array (of strings or of objects)."""
    node = as_dict(video)
    if node is not None:
        return as_str(node.get("url"))
    items = as_list(video)
    if not items:
        return None
    first = items[0]
    return as_str(first) if isinstance(first, str) else as_str(dig(first, "url"))


def failure_of(error: object) -> tuple[FailureKind, str]:
    """Kind and message of AIML's ``error`` (``{"name", "message"}``, or a bare string)."""
    node = as_dict(error)
    name = as_str(node.get("name")) if node else None
    message = as_str(node.get("message")) if node else as_str(error)
    text = ": ".join(p for p in (name, message) if p) or "the generation failed (no reason given)"
    if mentions_moderation(name, message):
        return FailureKind.MODERATION, text
    squashed = (name or "").lower().replace(" ", "")
    if any(word in squashed for word in _INPUT_WORDS):
        return FailureKind.INPUT, text
    return FailureKind.PROVIDER, text


def generation_handle(data: Mapping[str, Any]) -> str | None:
    """The task handle: ``generation_id`` first, then ``id`` — the SDK's order
    (aimlapi-sdk-python ``aimlapi/resources/videos.py``, ``_extract_generation_id``); some AIML
    video models answer with ``generation_id`` only."""
    return as_str(data.get("generation_id")) or as_str(data.get("id"))


def cost_of(data: Mapping[str, Any]) -> float | None:
    """USD charged: ``meta.usage.usd_spent`` when given, else ``credits_used / 2,000,000``."""
    usd = as_float(dig(data, "meta", "usage", "usd_spent"))
    if usd is not None:
        return usd
    credits = as_float(dig(data, "meta", "usage", "credits_used"))
    return credits * USD_PER_CREDIT if credits is not None else None


def parse_generation(handle: str, data: Mapping[str, Any]) -> TaskStatus:
    """One generation object (submit and poll share the schema) as a neutral status."""
    raw = as_str(data.get("status")) or ""
    state = STATES.get(raw.lower(), TaskState.PENDING)
    kind: FailureKind | None = None
    message: str | None = None
    if state is TaskState.FAILED:
        kind, message = failure_of(data.get("error"))
    return TaskStatus(
        handle=handle,
        state=state,
        raw_status=raw,
        output_url=video_url(data.get("video")) if state is TaskState.SUCCEEDED else None,
        cost_usd=cost_of(data),
        failure_kind=kind,
        failure_message=message,
    )


class AimlApiProvider:
    """Runway Gen-4 Turbo through AIML API."""

    name = "aimlapi"
    max_poll_batch = 1
    #: AIML asks for nothing; its SDK polls every 10 s. The engine adapts above this floor.
    min_poll_interval = 1.0
    can_cancel = False
    resend_safe = False

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        self._wire = Wire(config, session)

    def planned_handle(self, request: SubmitRequest) -> str | None:
        """The task id comes in the answer: nothing is known before the POST."""
        return None

    async def submit(self, request: SubmitRequest) -> Submitted:
        label = request.take.label
        answer = await self._wire.call("POST", PATH, body=build_body(request), submit=True, take=label)
        if not answer.ok:
            raise self._wire.error(answer, kinds={403: FailureKind.CREDITS}, take=label)
        data = as_dict(answer.data)
        if data is None:
            raise self._wire.malformed(answer, "expected a JSON object", submit=True, take=label)
        handle = generation_handle(data)
        if handle:
            return Submitted(handle=handle)
        if (as_str(data.get("status")) or "").lower() == "error":
            kind, message = failure_of(data.get("error"))
            raise TerminalError(
                self._wire.scrub(message),
                kind=kind,
                provider=self.name,
                status=answer.status,
                url=answer.url,
                take=label,
            )
        raise self._wire.malformed(answer, "no generation id", submit=True, take=label)

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        """One GET per handle (AIML has no batch query); the engine normally passes one."""
        return {handle: await self._poll_one(handle) for handle in handles}

    async def _poll_one(self, handle: str) -> TaskStatus:
        answer = await self._wire.call("GET", PATH, params={"generation_id": handle})
        if answer.status == 404:
            return not_found_status(handle)
        if not answer.ok:
            raise self._wire.error(answer, kinds={403: FailureKind.CREDITS})
        data = as_dict(answer.data)
        if data is None:
            raise self._wire.malformed(answer, "expected a JSON object", submit=False)
        return parse_generation(handle, data)

    async def cancel(self, handle: str) -> bool:
        """AIML API has no cancel endpoint: a task in flight runs (and bills) to its end."""
        return False

    async def account(self) -> Account:
        """``GET /v1/billing/balance``: proves the key and bills nothing.

        The balance is in credits; converting it at the ``credits_used`` rate is an assumption
        (AIML does not say both are the same unit), so it is shown, never acted on.
        """
        answer = await self._wire.call("GET", BALANCE_PATH)
        if not answer.ok:
            raise self._wire.error(answer)
        credits = as_float(dig(answer.data, "balance"))
        balance = credits * USD_PER_CREDIT if credits is not None else None
        return Account(checked_with="GET " + BALANCE_PATH, balance_usd=balance)
