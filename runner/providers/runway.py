"""Runway developer API adapter for ``gen4_turbo`` (providers.md §3).

Submit ``POST /v1/image_to_video``, poll ``GET /v1/tasks/{id}``; every request carries
``X-Runway-Version: 2024-11-06`` or Runway refuses it. Runway has no idempotency key (its own SDK
retries creates blindly and can bill twice), so ``resend_safe`` is False, and it asks clients not to
poll a task more often than every 5 s. ``THROTTLED`` tasks are accepted and queued: neutral QUEUED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from runner.errors import FailureKind
from runner.manifest.limits import RATIO_SIZES
from runner.providers._http import Wire
from runner.providers.base import Account, ProviderConfig, SubmitRequest, Submitted, TaskState, TaskStatus
from runner.providers.shapes import (
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    dig,
    mentions_moderation,
    model_id,
    not_found_status,
)

API_VERSION = "2024-11-06"
SUBMIT_PATH = "/v1/image_to_video"
TASK_PATH = "/v1/tasks/"
ORGANIZATION_PATH = "/v1/organization"
#: USD per credit (providers.md §3, [M]: 5 credits/s at $0.01).
USD_PER_CREDIT = 0.01

STATES: Mapping[str, TaskState] = {
    "PENDING": TaskState.QUEUED,
    "THROTTLED": TaskState.QUEUED,
    "RUNNING": TaskState.RUNNING,
    "SUCCEEDED": TaskState.SUCCEEDED,
    "FAILED": TaskState.FAILED,
    "CANCELLED": TaskState.CANCELLED,
}


def build_body(request: SubmitRequest) -> dict[str, Any]:
    """The JSON Runway expects for one take: ratio as pixels (``1280:720``), explicit seed."""
    take = request.take
    model = model_id("runway", request)  # checks the ratio too
    width, height = RATIO_SIZES[take.ratio]
    body: dict[str, Any] = {
        "model": model,
        "promptImage": request.image,
        "ratio": f"{width}:{height}",
        "duration": take.duration,
        "seed": take.seed,
    }
    if take.prompt:
        body["promptText"] = take.prompt
    if take.moderation:
        body["contentModeration"] = {"publicFigureThreshold": take.moderation}
    return body


def classify_failure(code: str | None, message: str | None) -> FailureKind:
    """The kind of a ``failureCode`` (providers.md §3; runwayml/skills ``rw-api-reference``).

    Any code holding ``SAFETY`` is moderation (``SAFETY.INPUT.TEXT``,
    ``INPUT_PREPROCESSING.SAFETY.TEXT``); ``INTERNAL``, ``INTERNAL.BAD_OUTPUT.*``,
    ``INPUT_PREPROCESSING.INTERNAL`` and ``THIRD_PARTY.*`` are Runway's side; ``ASSET.*`` and the
    other input codes are the take's input. An unknown code is Runway's side, not retryable.
    """
    upper = (code or "").upper()
    if "SAFETY" in upper:
        return FailureKind.MODERATION
    if is_retryable_code(upper):
        return FailureKind.PROVIDER
    if upper.startswith(("ASSET", "INPUT")):
        return FailureKind.INPUT
    if not upper and mentions_moderation(message):
        return FailureKind.MODERATION
    return FailureKind.PROVIDER


def is_retryable_code(code: str | None) -> bool:
    """Provider-side codes that a *new* task may get past: ``INTERNAL*``, ``*.INTERNAL``, ``THIRD_PARTY*``."""
    parts = (code or "").upper().split(".")
    if "SAFETY" in parts:
        return False
    return "INTERNAL" in parts or parts[0] == "THIRD_PARTY"


def _failure(data: Mapping[str, Any], credits: float | None) -> tuple[FailureKind, str, bool]:
    """Kind, message and retryability of a FAILED task; retryable only when it billed nothing."""
    code = as_str(data.get("failureCode"))
    failure = as_str(data.get("failure"))
    kind = classify_failure(code, failure)
    message = ": ".join(p for p in (code, failure) if p) or "the task failed (no reason given)"
    retryable = kind is FailureKind.PROVIDER and is_retryable_code(code) and not credits
    return kind, message, retryable


def parse_task(handle: str, data: Mapping[str, Any]) -> TaskStatus:
    """One task object as a neutral status; cost only from a terminal task's ``cost.credits``."""
    raw = as_str(data.get("status")) or ""
    state = STATES.get(raw.upper(), TaskState.PENDING)
    credits = as_float(dig(data, "cost", "credits"))
    progress = as_float(data.get("progress"))
    outputs = as_list(data.get("output"))
    kind: FailureKind | None = None
    message: str | None = None
    retryable = False
    if state is TaskState.FAILED:
        kind, message, retryable = _failure(data, credits)
    return TaskStatus(
        handle=handle,
        state=state,
        raw_status=raw,
        progress=min(1.0, max(0.0, progress)) if progress is not None else None,
        output_url=as_str(outputs[0]) if outputs and state is TaskState.SUCCEEDED else None,
        cost_usd=credits * USD_PER_CREDIT if credits is not None else None,
        failure_kind=kind,
        failure_message=message,
        retryable=retryable,
    )


def parse_organization(data: object, model: str) -> Account:
    """``GET /v1/organization`` (runwayml SDK ``types/organization_retrieve_response.py``).

    ``tier.models[model].maxConcurrentGenerations`` / ``maxDailyGenerations`` (null: no limit),
    ``usage.models[model].dailyGenerations`` (the past day), ``creditBalance`` in credits.
    """
    credits = as_float(dig(data, "creditBalance"))
    return Account(
        checked_with="GET " + ORGANIZATION_PATH,
        max_concurrent=as_int(dig(data, "tier", "models", model, "maxConcurrentGenerations")),
        max_daily=as_int(dig(data, "tier", "models", model, "maxDailyGenerations")),
        used_today=as_int(dig(data, "usage", "models", model, "dailyGenerations")),
        balance_usd=credits * USD_PER_CREDIT if credits is not None else None,
    )


class RunwayProvider:
    """Runway Gen-4 Turbo through Runway's own developer API."""

    name = "runway"
    max_poll_batch = 1
    #: Runway: "do not expect updates more often than every 5 seconds" per task.
    min_poll_interval = 5.0
    resend_safe = False
    can_cancel = True

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        self._wire = Wire(config, session, headers={"X-Runway-Version": API_VERSION})

    def planned_handle(self, request: SubmitRequest) -> str | None:
        """The task id comes in the answer: nothing is known before the POST."""
        return None

    async def submit(self, request: SubmitRequest) -> Submitted:
        label = request.take.label
        answer = await self._wire.call("POST", SUBMIT_PATH, body=build_body(request), submit=True, take=label)
        if not answer.ok:
            raise self._wire.error(answer, take=label)
        handle = as_str(dig(answer.data, "id"))
        if handle is None:
            raise self._wire.malformed(answer, "no task id", submit=True, take=label)
        return Submitted(handle=handle)

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        """One GET per handle (Runway has no batch query); the engine normally passes one."""
        return {handle: await self._poll_one(handle) for handle in handles}

    async def _poll_one(self, handle: str) -> TaskStatus:
        answer = await self._wire.call("GET", TASK_PATH + quote(handle, safe=""))
        if answer.status == 404:
            return not_found_status(handle)
        if not answer.ok:
            raise self._wire.error(answer)
        data = as_dict(answer.data)
        if data is None:
            raise self._wire.malformed(answer, "expected a JSON object", submit=False)
        return parse_task(handle, data)

    async def cancel(self, handle: str) -> bool:
        """``DELETE /v1/tasks/{id}``: cancels a task in flight (Runway refunds it); 404 means gone."""
        answer = await self._wire.call("DELETE", TASK_PATH + quote(handle, safe=""))
        if answer.ok or answer.status == 404:
            return True
        raise self._wire.error(answer)

    async def account(self, model: str = "gen4_turbo") -> Account:
        """The key's organization: tier limits for ``model``, usage today, credit left. Bills nothing."""
        answer = await self._wire.call("GET", ORGANIZATION_PATH)
        if not answer.ok:
            raise self._wire.error(answer)
        if as_dict(answer.data) is None:
            raise self._wire.malformed(answer, "expected a JSON object", submit=False)
        return parse_organization(answer.data, model)
