"""Runway's own developer API: ``/v1/image_to_video``, ``/v1/tasks/{id}``, ``/v1/organization``.

Wire facts (providers.md §3, and the official ``runwayml`` SDK's types): bearer auth plus the
required ``X-Runway-Version: 2024-11-06`` header; submit answers ``{"id", "estimatedCost"}``;
tasks go PENDING → RUNNING (``progress`` 0–1) → SUCCEEDED (``output: [url]``) | FAILED
(``failure``, ``failureCode``), or CANCELLED by ``DELETE``. Beyond the tier's
``maxConcurrentGenerations`` a task is accepted but waits THROTTLED, then runs (and is billed)
when a slot frees. ``estimatedCost.credits`` while pending, ``cost.credits`` at the end: 5 credits
per second ($0.01 each), 0 when failed or cancelled (Runway refunds those). Errors are
``{"error": "…"}``; a 400 names the field, also in ``issues[].path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from runner.simulator.inputs import Invalid, check_image, one_of, optional_int, optional_str
from runner.simulator.state import World
from runner.simulator.tasks import Phase, Task
from runner.simulator.wire import answer_fault, bearer, lose_answer, origin, read_json, take_id, world_of

PROVIDER = "runway"
MODEL = "gen4_turbo"
API_VERSION = "2024-11-06"
RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
FIELDS = ("model", "promptImage", "ratio", "duration", "promptText", "seed", "contentModeration")
CREDITS_PER_SECOND = 5
USD_PER_CREDIT = 0.01
DATA_URI_LIMIT = 5 * 1024 * 1024
CODES_5XX = (502, 503, 504)
#: ``failure`` texts for the codes Runway documents (runwayml/skills ``rw-api-reference``).
FAILURES: Mapping[str, str] = {
    "SAFETY.INPUT.IMAGE": "The input image was flagged by content moderation.",
    "SAFETY.INPUT.TEXT": "The prompt text was flagged by content moderation.",
    "INTERNAL": "An internal error occurred. Please try again.",
    "INTERNAL.BAD_OUTPUT.CODE01": "The generated output failed a quality check. Please try again.",
    "INPUT_PREPROCESSING.INTERNAL": "The input could not be processed due to an internal error.",
    "THIRD_PARTY.UNAVAILABLE": "An upstream service is temporarily unavailable.",
    "ASSET.INVALID": "The input asset is invalid or could not be read.",
}
DEFAULT_FAILURE = "The task failed."


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _invalid(exc: Invalid) -> web.Response:
    issue = {"code": exc.code, "path": exc.field.split("."), "message": exc.message}
    body = {"error": f"Invalid parameter '{exc.field}': {exc.message}", "issues": [issue]}
    return web.json_response(body, status=400)


def _guard(request: web.Request, world: World) -> web.Response | None:
    """Runway's gate on every route: the key, then the API version header."""
    if bearer(request) != world.config.keys[PROVIDER]:
        return error(401, "Unauthorized: the API key is missing or invalid")
    if request.headers.get("X-Runway-Version") != API_VERSION:
        return error(400, f"The X-Runway-Version header is required and must be {API_VERSION!r}")
    return None


def _check_prompt_image(value: object) -> None:
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], Mapping):
            raise Invalid("promptImage", f"{MODEL} takes exactly one image, at position 'first'")
        if value[0].get("position") != "first":
            raise Invalid("promptImage", f"{MODEL} supports position 'first' only")
        value = value[0].get("uri")
    check_image("promptImage", value, max_data_uri=DATA_URI_LIMIT)


def validate(body: object) -> tuple[int, str]:
    """(duration, promptText) of a valid request; unknown fields are refused like Runway does."""
    if not isinstance(body, Mapping):
        raise Invalid("body", "body must be a JSON object")
    for name in body:
        if name not in FIELDS:
            raise Invalid(str(name), f"unknown parameter {name!r}", "unrecognized_keys")
    if body.get("model") != MODEL:
        raise Invalid("model", f"model must be {MODEL!r}, got {body.get('model')!r}")
    if "promptImage" not in body:
        raise Invalid("promptImage", "promptImage is required", "required")
    _check_prompt_image(body["promptImage"])
    if "ratio" not in body:
        raise Invalid("ratio", "ratio is required", "required")
    one_of(body, "ratio", RATIOS, default=None)
    duration = optional_int(body, "duration", low=2, high=10, default=10) or 10
    prompt = optional_str(body, "promptText", min_len=1, max_len=1000, utf16=True) or ""
    optional_int(body, "seed", low=0, high=4_294_967_295, default=None)
    moderation = body.get("contentModeration", {})
    if not isinstance(moderation, Mapping):
        raise Invalid("contentModeration", "contentModeration must be an object")
    one_of(moderation, "publicFigureThreshold", ("auto", "low"), default="auto")
    return duration, prompt


def _credits(task: Task) -> int:
    return task.duration * CREDITS_PER_SECOND


def render(task: Task, world: World, request: web.Request) -> dict[str, Any]:
    """The task as ``GET /v1/tasks/{id}`` shows it now."""
    phase = task.phase(world.now())
    body: dict[str, Any] = {"id": task.task_id, "createdAt": world.timestamp(task.created_at)}
    if phase is Phase.SUCCEEDED:
        body.update(status="SUCCEEDED", output=[world.issue_url(task, origin(request))])
        body["cost"] = {"credits": _credits(task)}
    elif phase is Phase.FAILED:
        code = task.failure_code or "SAFETY.INPUT.IMAGE"
        body.update(status="FAILED", failure=FAILURES.get(code, DEFAULT_FAILURE), failureCode=code)
        body["cost"] = {"credits": 0}
    elif phase is Phase.CANCELLED:
        body.update(status="CANCELLED", cost={"credits": 0})
    else:
        status = {Phase.WAITING: "THROTTLED", Phase.QUEUED: "PENDING", Phase.RUNNING: "RUNNING"}[phase]
        body.update(status=status, estimatedCost={"credits": _credits(task)})
        if phase is Phase.RUNNING:
            body["progress"] = task.progress(world.now())
    return body


async def create(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    denied = _guard(request, world)
    if denied is not None:
        return denied
    counters = world.counters[PROVIDER]
    counters.submissions += 1
    parsed, body = await read_json(request)
    take = take_id(body)
    decision = world.faults.request(f"runway-submit:{take}", codes_5xx=CODES_5XX, can_reset=False)
    refused = await answer_fault(request, world, decision, error)
    if refused is not None:
        counters.rejected += 1
        return refused
    try:
        if not parsed:
            raise Invalid("body", "body must be valid JSON")
        duration, prompt = validate(body)
    except Invalid as exc:
        counters.rejected += 1
        return _invalid(exc)
    limit = world.config.runway_daily_limit
    if limit is not None and world.created_today(PROVIDER) >= limit:
        counters.rejected += 1
        return error(429, f"You have reached your daily limit of {limit} generations for {MODEL}")
    task = world.register(
        PROVIDER,
        take_id=take,
        duration=duration,
        prompt=prompt,
        seed=body.get("seed"),
        cost_usd=round(duration * CREDITS_PER_SECOND * USD_PER_CREDIT, 6),
    )
    if world.faults.lost_answer(f"{PROVIDER}:{task.task_id}"):
        await lose_answer(request, world)
    return web.json_response({"id": task.task_id, "estimatedCost": {"credits": _credits(task)}})


async def retrieve(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    denied = _guard(request, world)
    if denied is not None:
        return denied
    counters = world.counters[PROVIDER]
    counters.poll_requests += 1
    counters.polls += 1
    task_id = request.match_info["task_id"]
    decision = world.faults.request(f"runway-poll:{task_id}", codes_5xx=CODES_5XX, can_reset=True)
    refused = await answer_fault(request, world, decision, error)
    if refused is not None:
        return refused
    task = world.find(PROVIDER, task_id)
    if task is None:
        return error(404, "Task not found")
    return web.json_response(render(task, world, request))


async def delete(request: web.Request) -> web.StreamResponse:
    """Cancel a task in flight (refunded: cost 0), or delete a finished one (then 404)."""
    world = world_of(request)
    denied = _guard(request, world)
    if denied is not None:
        return denied
    task = world.find(PROVIDER, request.match_info["task_id"])
    if task is None:
        return error(404, "Task not found")
    world.cancel(task)
    return web.Response(status=204)


async def organization(request: web.Request) -> web.StreamResponse:
    """Account limits and usage, in the shape the SDK's ``organization.retrieve()`` parses."""
    world = world_of(request)
    world.counters[PROVIDER].account_checks += 1
    denied = _guard(request, world)
    if denied is not None:
        return denied
    world.advance()
    now = world.now()
    tasks = list(world.tasks[PROVIDER].values())
    spent = sum(_credits(t) for t in tasks if t.phase(now) is Phase.SUCCEEDED)
    body = {
        "creditBalance": world.config.runway_credits - spent,
        "tier": {
            "maxMonthlyCreditSpend": world.config.runway_credits,
            "models": {
                MODEL: {
                    "maxConcurrentGenerations": world.config.runway_concurrency,
                    "maxDailyGenerations": world.config.runway_daily_limit,
                }
            },
        },
        "usage": {"models": {MODEL: {"dailyGenerations": world.created_today(PROVIDER)}}},
    }
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/image_to_video", create)
    app.router.add_get("/v1/tasks/{task_id}", retrieve)
    app.router.add_delete("/v1/tasks/{task_id}", delete)
    app.router.add_get("/v1/organization", organization)
