"""AIML API's face: ``/v2/video/generations`` for model ``runway/gen4_turbo``.

Wire facts (providers.md §1): bearer auth; submit answers 201 ``{"id", "status": "queued"}``;
poll ``GET ?generation_id=`` answers ``{id, status, video, error, meta}`` with status
queued → generating → completed | error; ``video: {"url"}``; ``meta.usage.credits_used`` on the
end (USD = credits / 2,000,000; the simulator charges 100,000 credits per clip second, so a 5 s
clip is $0.25). Errors are ``{message, path, requestId, statusCode, timestamp}``. Over
``aiml_concurrency`` tasks in flight, submit answers 429 (no Retry-After: none is documented).
Moderation failures end as status ``error`` with ``{"name": "ModerationError", …}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from runner.simulator.inputs import Invalid, check_image, one_of, optional_int, optional_str
from runner.simulator.state import World
from runner.simulator.tasks import Phase, Task
from runner.simulator.wire import (
    answer_fault,
    bearer,
    lose_answer,
    origin,
    read_json,
    take_id,
    world_of,
)

PATH = "/v2/video/generations"
BALANCE_PATH = "/v1/billing/balance"
LOW_BALANCE = 10_000
MODEL = "runway/gen4_turbo"
ASPECT_RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
CREDITS_PER_SECOND = 100_000
CREDITS_PER_USD = 2_000_000
CODES_5XX = (500, 502, 503)
PROVIDER = "aimlapi"

_STATUS = {
    Phase.WAITING: "queued",
    Phase.QUEUED: "queued",
    Phase.RUNNING: "generating",
    Phase.SUCCEEDED: "completed",
    Phase.FAILED: "error",
    Phase.CANCELLED: "error",
}


def error(status: int, message: str, path: str = PATH) -> web.Response:
    """AIML's error body."""
    body = {
        "message": message,
        "path": path,
        "requestId": str(uuid.uuid4()),
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return web.json_response(body, status=status)


@dataclass(frozen=True)
class AimlRequest:
    prompt: str
    duration: int
    seed: int | None


def validate(body: object) -> AimlRequest:
    """The documented schema; unknown fields are ignored, as a JSON API typically does."""
    if not isinstance(body, Mapping):
        raise Invalid("body", "body must be a JSON object")
    if body.get("model") != MODEL:
        raise Invalid("model", f"model must be {MODEL!r}, got {body.get('model')!r}")
    if "image_url" not in body:
        raise Invalid("image_url", "image_url is required")
    check_image("image_url", body["image_url"])
    if body.get("tail_image_url") is not None:
        check_image("tail_image_url", body["tail_image_url"])
    prompt = optional_str(body, "prompt", max_len=1000) or ""
    one_of(body, "aspect_ratio", ASPECT_RATIOS, default="16:9")
    duration = optional_int(body, "duration", low=5, high=10, default=5, choices=(5, 10))
    seed = optional_int(body, "seed", low=0, high=4_294_967_295, default=None)
    return AimlRequest(prompt=prompt, duration=duration or 5, seed=seed)


def _credits(task: Task) -> int:
    return task.duration * CREDITS_PER_SECOND


def handle_field(world: World) -> str:
    """``id`` as documented, or ``generation_id`` alone (the SDK reads it first; some models
    answer only with it — aimlapi-sdk-python ``resources/videos.py``)."""
    return "generation_id" if world.config.aiml_generation_id_only else "id"


def render(task: Task, world: World, request: web.Request) -> dict[str, Any]:
    """The generation as AIML reports it now (submit and poll share this schema)."""
    phase = task.phase(world.now())
    body: dict[str, Any] = {
        handle_field(world): task.task_id,
        "status": _STATUS[phase],
        "video": None,
        "error": None,
        "meta": None,
    }
    if phase is Phase.SUCCEEDED:
        body["video"] = {"url": world.issue_url(task, origin(request))}
        body["meta"] = {"usage": {"credits_used": _credits(task)}}
    elif phase.terminal:
        body["error"] = {
            "name": "ModerationError",
            "message": "The input image or prompt was flagged by content moderation (SAFETY.INPUT.IMAGE)",
        }
        body["meta"] = {"usage": {"credits_used": 0}}
    return body


def _authorized(request: web.Request, world: World) -> bool:
    return bearer(request) == world.config.keys[PROVIDER]


async def submit(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    if not _authorized(request, world):
        return error(401, "Unauthorized: missing or invalid API key")
    counters = world.counters[PROVIDER]
    counters.submissions += 1
    parsed, body = await read_json(request)
    take = take_id(body)
    decision = world.faults.request(f"aiml-submit:{take}", codes_5xx=CODES_5XX, can_reset=False)
    refused = await answer_fault(request, world, decision, error)
    if refused is not None:
        counters.rejected += 1
        return refused
    try:
        if not parsed:
            raise Invalid("body", "body must be valid JSON")
        params = validate(body)
    except Invalid as exc:
        counters.rejected += 1
        return error(400, exc.message)
    if world.in_flight(PROVIDER) >= world.config.aiml_concurrency:
        counters.rejected += 1
        return error(429, "Too many concurrent generations for this account; retry later")
    task = world.register(
        PROVIDER,
        take_id=take,
        duration=params.duration,
        prompt=params.prompt,
        seed=params.seed,
        cost_usd=params.duration * CREDITS_PER_SECOND / CREDITS_PER_USD,
    )
    if world.faults.lost_answer(f"{PROVIDER}:{task.task_id}"):
        await lose_answer(request, world)
    return web.json_response({handle_field(world): task.task_id, "status": "queued"}, status=201)


async def poll(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    if not _authorized(request, world):
        return error(401, "Unauthorized: missing or invalid API key")
    counters = world.counters[PROVIDER]
    counters.poll_requests += 1
    counters.polls += 1
    generation_id = request.query.get("generation_id", "")
    decision = world.faults.request(f"aiml-poll:{generation_id}", codes_5xx=CODES_5XX, can_reset=True)
    refused = await answer_fault(request, world, decision, error)
    if refused is not None:
        return refused
    if not generation_id:
        return error(400, "generation_id is required")
    task = world.find(PROVIDER, generation_id)
    if task is None:
        return error(404, f"Generation {generation_id} not found")
    return web.json_response(render(task, world, request))


async def balance(request: web.Request) -> web.StreamResponse:
    """``GET /v1/billing/balance`` (docs.aimlapi.com "Account Balance"): credits left, bills nothing."""
    world = world_of(request)
    world.counters[PROVIDER].account_checks += 1
    if not _authorized(request, world):
        return error(401, "Unauthorized: missing or invalid API key", BALANCE_PATH)
    now = world.now()
    spent = sum(_credits(t) for t in world.tasks[PROVIDER].values() if t.phase(now) is Phase.SUCCEEDED)
    left = world.config.aiml_credits - spent
    body = {
        "balance": left,
        "lowBalance": left < LOW_BALANCE,
        "lowBalanceThreshold": LOW_BALANCE,
        "lastUpdated": world.timestamp(now),
        "autoDebitStatus": "disabled",
        "status": "current",
        "statusExplanation": "Balance is current and up to date",
    }
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, submit)
    app.router.add_get(PATH, poll)
    app.router.add_get(BALANCE_PATH, balance)
