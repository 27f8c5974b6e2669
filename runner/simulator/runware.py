"""Runware's face: ``POST /v1`` with a JSON array of tasks, model ``runway:1@1``.

Wire facts (providers.md §2): auth by bearer header or a leading ``authentication`` task;
``videoInference`` with ``deliveryMethod: "async"`` is acknowledged ``{"data": [{taskType,
taskUUID}]}``; ``getResponse`` items poll (many per request) and carry ``status`` processing /
success. The client picks the ``taskUUID`` (version 4) and it is the idempotency key: a repeat is
a ``conflictTaskUUID`` error. Errors are ``{"errors": [{code, message, parameter, taskType,
taskUUID}]}``, scoped per task: one request can carry both ``data`` and ``errors``.

Simulator choices where the docs are silent:

- Without ``deliveryMethod`` (Runware's default is sync) the request is held until the video is
  done and answered with the result item — exactly the shape of the source document's five
  examples, which send no ``deliveryMethod`` and show ``cost`` without asking for it. Async
  results follow providers.md: ``cost`` only with ``includeCost: true``.
- A request's HTTP status is 200 when it produced any ``data`` item (or only reports failed
  tasks); otherwise the status of its first error (400 validation/conflict, 429 capacity).
- A task that *failed* is reported by ``getResponse`` in ``errors``, with ``"status": "error"``
  and its taskUUID, under HTTP 200 — the poll itself worked.
- Cost is 0.05 × duration + 0.0042 USD, rounded to 4 places: the source document's 6 s → 0.3042
  and 8 s → 0.4042.
- ``seed`` is checked against 0…4294967295 (Runway's range upstream); ``numberResults`` must be 1;
  ``webhookURL`` is accepted and never called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from runner.simulator.inputs import Invalid, check_image, is_uuid_v4, one_of, optional_int, optional_str
from runner.simulator.state import World
from runner.simulator.tasks import Phase, Task
from runner.simulator.wire import (
    answer_fault,
    bearer,
    lose_answer,
    origin,
    read_json,
    sleep_sim,
    take_id,
    world_of,
)

PATH = "/v1"
MODEL = "runway:1@1"
PROVIDER = "runware"
SIZES = ((1280, 720), (720, 1280), (1104, 832), (832, 1104), (960, 960), (1584, 672))
CODES_5XX = (503, 504)  # temporary capacity, queue wait exceeded: the transient ones documented


def cost_usd(duration: int) -> float:
    return round(0.05 * duration + 0.0042, 4)


def _item(code: str, message: str, parameter: str, task_type: str, task_uuid: object) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "message": message, "parameter": parameter, "taskType": task_type}
    if isinstance(task_uuid, str):
        item["taskUUID"] = task_uuid
    return item


def error(status: int, message: str) -> web.Response:
    """A whole-request error (injected faults, bad body)."""
    codes = {
        429: "tooManyRequests",
        400: "invalidRequestBody",
        503: "serviceUnavailable",
        504: "timeoutProvider",
    }
    code = codes.get(status, "serviceUnavailable")
    return web.json_response({"errors": [_item(code, message, "", "", None)]}, status=status)


def _auth_error(code: str, message: str) -> web.Response:
    return web.json_response({"errors": [_item(code, message, "apiKey", "authentication", None)]}, status=401)


@dataclass
class Outcome:
    """What one request produced: data items, and per-task errors each with its HTTP status."""

    data: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def fail(self, status: int, item: dict[str, Any]) -> None:
        self.errors.append((status, item))

    def response(self) -> web.Response:
        status = 200 if self.data or not self.errors else self.errors[0][0]
        body: dict[str, Any] = {"data": self.data} if status == 200 else {}
        if self.errors:
            body["errors"] = [item for _, item in self.errors]
        return web.json_response(body, status=status)


@dataclass(frozen=True)
class VideoRequest:
    task_uuid: str
    prompt: str
    duration: int
    seed: int | None
    include_cost: bool
    sync: bool


def _error_code(exc: Invalid) -> str:
    name = exc.field.rsplit(".", 1)[-1]
    name = name[:1].upper() + name[1:]
    return ("missing" if exc.code == "required" else "invalid") + name


def _check_frame_images(item: Mapping[str, Any]) -> None:
    inputs = item.get("inputs")
    frames = inputs.get("frameImages") if isinstance(inputs, Mapping) else None
    where = "inputs.frameImages"
    if not isinstance(frames, list) or not frames:
        raise Invalid(where, f"{where} is required: [{{image, frame: 'first'}}]", "required")
    if len(frames) != 1 or not isinstance(frames[0], Mapping):
        raise Invalid(where, f"{where}: {MODEL} takes exactly one image, as the first frame")
    if frames[0].get("frame", "first") != "first":
        raise Invalid(where, f"{where}: {MODEL} supports the first frame only")
    check_image(where, frames[0].get("image"), runware=True)


def _check_settings(item: Mapping[str, Any]) -> None:
    settings = item.get("providerSettings", {})
    runway = settings.get("runway", {}) if isinstance(settings, Mapping) else None
    moderation = runway.get("contentModeration", {}) if isinstance(runway, Mapping) else None
    if not isinstance(moderation, Mapping):
        raise Invalid("providerSettings", "providerSettings.runway.contentModeration must be an object")
    try:
        one_of(moderation, "publicFigureThreshold", ("auto", "low"), default="auto")
    except Invalid as exc:
        raise Invalid(f"providerSettings.runway.contentModeration.{exc.field}", exc.message) from None
    one_of(item, "outputFormat", ("MP4", "WEBM", "MOV"), default="MP4")
    optional_int(item, "outputQuality", low=20, high=99, default=95)
    optional_int(item, "numberResults", low=1, high=1, default=1)
    one_of(item, "deliveryMethod", ("async", "sync"), default="sync")
    if not isinstance(item.get("includeCost", False), bool):
        raise Invalid("includeCost", "includeCost must be a boolean")


def validate(item: Mapping[str, Any]) -> VideoRequest:
    task_uuid = item.get("taskUUID")
    if not is_uuid_v4(task_uuid):
        raise Invalid("taskUUID", "taskUUID must be a UUID version 4 string")
    if item.get("model") != MODEL:
        raise Invalid("model", f"model must be {MODEL!r} for this simulator, got {item.get('model')!r}")
    prompt = optional_str(item, "positivePrompt", min_len=1, max_len=1000, required=True) or ""
    size = (item.get("width"), item.get("height"))
    if size not in SIZES:
        allowed = ", ".join(f"{w}x{h}" for w, h in SIZES)
        raise Invalid("width", f"width and height must together be one of {allowed}")
    duration = optional_int(item, "duration", low=2, high=10, default=10) or 10
    seed = optional_int(item, "seed", low=0, high=4_294_967_295, default=None)
    _check_frame_images(item)
    _check_settings(item)
    include_cost = bool(item.get("includeCost", False))
    sync = item.get("deliveryMethod", "sync") == "sync"
    return VideoRequest(str(task_uuid), prompt, duration, seed, include_cost, sync)


def _submit(item: Mapping[str, Any], world: World, outcome: Outcome) -> Task | None:
    """Register one videoInference task, or record why not."""
    counters = world.counters[PROVIDER]
    task_uuid = item.get("taskUUID")
    try:
        req = validate(item)
    except Invalid as exc:
        counters.rejected += 1
        outcome.fail(400, _item(_error_code(exc), exc.message, exc.field, "videoInference", task_uuid))
        return None
    if req.task_uuid in world.tasks[PROVIDER]:
        counters.rejected += 1
        message = "A task with this taskUUID already exists; poll it with getResponse"
        outcome.fail(400, _item("conflictTaskUUID", message, "taskUUID", "videoInference", task_uuid))
        return None
    if world.in_flight(PROVIDER) >= world.config.runware_capacity:
        counters.rejected += 1
        message = "Queue capacity exceeded; retry with backoff"
        outcome.fail(429, _item("queueCapacityExceeded", message, "", "videoInference", task_uuid))
        return None
    return world.register(
        PROVIDER,
        take_id=req.task_uuid,
        task_id=req.task_uuid,
        duration=req.duration,
        prompt=req.prompt,
        seed=req.seed,
        cost_usd=cost_usd(req.duration),
        extras={"include_cost": req.include_cost, "sync": req.sync},
    )


def _report(task: Task, world: World, request: web.Request, outcome: Outcome, *, sync: bool = False) -> None:
    """Where a task is now, as a ``getResponse`` item — or, ``sync``, as a held request's answer."""
    phase = task.phase(world.now())
    base: dict[str, Any] = {"taskType": "videoInference", "taskUUID": task.task_id}
    if phase is Phase.SUCCEEDED:
        result = {**base} if sync else {**base, "status": "success"}
        result["videoUUID"] = task.file_id
        result["videoURL"] = world.issue_url(task, origin(request))
        result["seed"] = task.seed
        if sync or task.extras.get("include_cost"):
            result["cost"] = task.cost_usd
        outcome.data.append(result)
    elif phase.terminal:
        message = "The provider's content moderation rejected the input (SAFETY.INPUT.IMAGE)"
        failure = _item("contentModerated", message, "inputs.frameImages", "videoInference", task.task_id)
        outcome.fail(400 if sync else 200, {**failure, "status": "error"})
    else:
        outcome.data.append({**base, "status": "processing"})


def _poll(item: Mapping[str, Any], world: World, request: web.Request, outcome: Outcome) -> None:
    task_uuid = item.get("taskUUID")
    task = world.find(PROVIDER, task_uuid) if isinstance(task_uuid, str) else None
    if task is None:
        message = "No task with this taskUUID"
        outcome.fail(400, _item("taskNotFound", message, "taskUUID", "getResponse", task_uuid))
        return
    _report(task, world, request, outcome)


def _authenticate(request: web.Request, world: World, tasks: list[Any]) -> web.Response | None:
    """None when the key is right; else Runware's 401. Strips a leading authentication task."""
    key = bearer(request)
    if tasks and isinstance(tasks[0], Mapping) and tasks[0].get("taskType") == "authentication":
        key = tasks.pop(0).get("apiKey")
    if not key:
        return _auth_error("missingApiKey", "Missing API key: send Authorization: Bearer <key>")
    if key != world.config.keys[PROVIDER]:
        return _auth_error("invalidApiKey", "Invalid API key. Get one at https://my.runware.ai/signup")
    return None


def _only_authentication(tasks: list[Any]) -> bool:
    return len(tasks) == 1 and isinstance(tasks[0], Mapping) and tasks[0].get("taskType") == "authentication"


def _authenticated(world: World) -> web.Response:
    """A lone authentication task's answer (runware.ai/docs/platform/authentication schema)."""
    session = world.dice.uuid4("connection-session", world.counters[PROVIDER].account_checks)
    item = {"taskType": "authentication", "connectionSessionUUID": session}
    return web.json_response({"data": [item]})


async def handle(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    parsed, body = await read_json(request)
    tasks = list(body) if parsed and isinstance(body, list) else []
    check_only = _only_authentication(tasks)
    if check_only:
        world.counters[PROVIDER].account_checks += 1
    denied = _authenticate(request, world, tasks)
    if denied is not None:
        return denied
    if check_only:
        return _authenticated(world)
    if not tasks or not all(isinstance(t, Mapping) for t in tasks):
        return error(400, "The body must be a non-empty JSON array of task objects")
    counters = world.counters[PROVIDER]
    submits = sum(1 for t in tasks if t.get("taskType") == "videoInference")
    polls = sum(1 for t in tasks if t.get("taskType") == "getResponse")
    counters.submissions += submits
    counters.polls += polls
    counters.poll_requests += 1 if polls else 0
    decision = world.faults.request(f"runware:{take_id(tasks)}", codes_5xx=CODES_5XX, can_reset=not submits)
    refused = await answer_fault(request, world, decision, error)
    if refused is not None:
        counters.rejected += submits
        return refused
    return await _run_tasks(request, world, tasks)


async def _run_tasks(request: web.Request, world: World, tasks: list[Mapping[str, Any]]) -> web.Response:
    """Each task in order; sync video tasks hold the answer until they end, like the real API."""
    outcome = Outcome()
    registered: list[Task] = []
    for item in tasks:
        task_type = item.get("taskType")
        if task_type == "videoInference":
            task = _submit(item, world, outcome)
            if task is not None:
                registered.append(task)
                if not task.extras["sync"]:
                    outcome.data.append({"taskType": "videoInference", "taskUUID": task.task_id})
        elif task_type == "getResponse":
            _poll(item, world, request, outcome)
        else:
            message = f"Unsupported taskType {task_type!r}"
            unsupported = _item(
                "unsupportedTaskType", message, "taskType", str(task_type), item.get("taskUUID")
            )
            outcome.fail(400, unsupported)
    if registered and world.faults.lost_answer(f"{PROVIDER}:{registered[0].task_id}"):
        await lose_answer(request, world)
    held = [task for task in registered if task.extras["sync"]]
    if held:
        ends = [task.end_at for task in held if task.end_at is not None]
        await sleep_sim(world, max(ends) - world.now() + 0.01)
        for task in held:
            _report(task, world, request, outcome, sync=True)
    return outcome.response()


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, handle)
