"""Runware adapter for Runway Gen-4 Turbo, ``runway:1@1`` (providers.md §2).

Every call is ``POST /v1`` with a JSON array of tasks. Two properties make Runware the easy one:

* the client picks the ``taskUUID`` (v4-shaped, from the take key and the attempt number), so a
  resent submit cannot bill twice — the second send meets ``conflictTaskUUID``, which means "it
  landed, poll it" (``resend_safe`` is True);
* several ``getResponse`` tasks fit in one request, so one POST polls every task in flight.

Errors come back per task (``{"errors": [{code, message, taskUUID}]}``): an error item for one
task is that task's FAILED status, never a failure of the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from runner.errors import FailureKind, TerminalError
from runner.manifest.limits import RATIO_SIZES
from runner.manifest.takes import task_uuid
from runner.providers._http import Answer, Wire
from runner.providers.base import (
    NOT_FOUND,
    Account,
    ProviderConfig,
    SubmitRequest,
    Submitted,
    TaskState,
    TaskStatus,
)
from runner.providers.shapes import (
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    mentions_moderation,
    model_id,
)

PATH = "/v1"
CONFLICT = "conflicttaskuuid"

STATES: Mapping[str, TaskState] = {
    "processing": TaskState.RUNNING,
    "success": TaskState.SUCCEEDED,
    "error": TaskState.FAILED,
}
_Parser = Callable[[str, Mapping[str, Any]], TaskStatus]
_INPUT_WORDS = ("invalid", "missing", "unsupported", "required", "outofrange")


def build_task(request: SubmitRequest) -> dict[str, Any]:
    """The ``videoInference`` task for one take; its taskUUID is derived, never random."""
    take = request.take
    model = model_id("runware", request)  # checks the ratio too
    width, height = RATIO_SIZES[take.ratio]
    task: dict[str, Any] = {
        "taskType": "videoInference",
        "taskUUID": task_uuid(take.key, request.attempt),
        "model": model,
        "width": width,
        "height": height,
        "duration": take.duration,
        "seed": take.seed,
        "inputs": {"frameImages": [{"image": request.image, "frame": "first"}]},
        "deliveryMethod": "async",
        "includeCost": True,
    }
    if take.prompt:
        task["positivePrompt"] = take.prompt
    if take.moderation:  # as the Runware page's five examples send it
        task["providerSettings"] = {
            "runway": {"contentModeration": {"publicFigureThreshold": take.moderation}}
        }
    return task


@dataclass(frozen=True)
class Envelope:
    """Runware's ``{"data": [...], "errors": [...]}``, with anything that is not an object dropped."""

    items: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @classmethod
    def read(cls, data: object) -> Envelope | None:
        node = as_dict(data)
        if node is None or ("data" not in node and "errors" not in node):
            return None
        items = [i for i in as_list(node.get("data")) if isinstance(i, dict)]
        errors = [e for e in as_list(node.get("errors")) if isinstance(e, dict)]
        return cls(items, errors)

    def conflict(self, handle: str) -> bool:
        """True when an error says this taskUUID already exists: an earlier send landed."""
        return any(
            (item_error(e)[0] or "").lower() == CONFLICT and as_str(e.get("taskUUID")) in (None, handle)
            for e in self.errors
        )


def classify(code: str | None, message: str | None) -> FailureKind:
    """Moderation/safety wording first, then input-shaped codes; the rest is Runware's side."""
    if mentions_moderation(code, message):
        return FailureKind.MODERATION
    squashed = (code or "").lower()
    if any(word in squashed for word in _INPUT_WORDS):
        return FailureKind.INPUT
    return FailureKind.PROVIDER


def item_error(item: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``code`` and ``message`` of an error item: top level, or nested under ``error``
    (``{"status": "error", "error": {"code", "message"}}`` — Runware REST SDK ``client.py``,
    ``_maybe_raise_item_errors``)."""
    nested = as_dict(item.get("error")) or {}
    code = as_str(item.get("code")) or as_str(nested.get("code"))
    message = as_str(item.get("message")) or as_str(nested.get("message"))
    if message is None and isinstance(item.get("error"), str):
        message = as_str(item.get("error"))
    return code, message


def _item_state(raw: str, url: str | None) -> TaskState:
    """The status word decides; a ``videoURL`` means finished unless the word says error
    (the REST SDK treats an item with a ``videoURL`` as done; the docs say ``success``)."""
    state = STATES.get(raw.lower(), TaskState.PENDING)
    if url and state is not TaskState.FAILED:
        return TaskState.SUCCEEDED
    return state


def parse_item(handle: str, item: Mapping[str, Any]) -> TaskStatus:
    """One ``data`` item; an item with a video is finished unless its status says error."""
    raw = as_str(item.get("status")) or ""
    url = as_str(item.get("videoURL"))
    state = _item_state(raw, url)
    kind: FailureKind | None = None
    message: str | None = None
    if state is TaskState.FAILED:
        code, text = item_error(item)
        message = ": ".join(p for p in (code, text) if p) or "the task failed (no reason given)"
        kind = classify(code, text)
    return TaskStatus(
        handle=handle,
        state=state,
        raw_status=raw,
        output_url=url if state is TaskState.SUCCEEDED else None,
        cost_usd=as_float(item.get("cost")),
        seed=as_int(item.get("seed")),
        failure_kind=kind,
        failure_message=message,
    )


def parse_error(handle: str, error: Mapping[str, Any]) -> TaskStatus:
    """One ``errors`` item scoped to a task: that task has failed (or Runware does not know it)."""
    code, message = item_error(error)
    unknown = "notfound" in (code or "").lower()
    return TaskStatus(
        handle=handle,
        state=TaskState.FAILED,
        raw_status=NOT_FOUND if unknown else "error",
        failure_kind=classify(code, message),
        failure_message=": ".join(p for p in (code, message) if p) or "error (no reason given)",
    )


def collect(envelope: Envelope, wanted: Sequence[str]) -> dict[str, TaskStatus]:
    """Statuses of the ``wanted`` tasks; the first terminal word about a task wins."""
    found: dict[str, TaskStatus] = {}
    keep = set(wanted)
    parsed: list[tuple[str | None, dict[str, Any], _Parser]]
    parsed = [(as_str(i.get("taskUUID")), i, parse_item) for i in envelope.items]
    parsed += [(as_str(e.get("taskUUID")), e, parse_error) for e in envelope.errors]
    for handle, node, parse in parsed:
        if handle is None or handle not in keep:
            continue
        earlier = found.get(handle)
        if earlier is None or not earlier.state.terminal:
            found[handle] = parse(handle, node)
    return found


def _whole_request_failed(status: int) -> bool:
    """Statuses about the request itself (auth, credits, capacity), not about one task in it."""
    return status in (401, 402, 403, 408, 429) or status >= 500 or 300 <= status < 400


class RunwareProvider:
    """Runway Gen-4 Turbo through Runware's REST API."""

    name = "runware"
    max_poll_batch = 100
    #: Runware asks for nothing; its REST SDK starts at 0.5 s. The engine adapts above this floor.
    min_poll_interval = 1.0
    can_cancel = False
    resend_safe = True

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        self._wire = Wire(config, session)
        self._key = config.api_key

    def planned_handle(self, request: SubmitRequest) -> str | None:
        """The taskUUID we choose (from the take key and attempt): known before the POST."""
        return task_uuid(request.take.key, request.attempt)

    async def submit(self, request: SubmitRequest) -> Submitted:
        task, label = build_task(request), request.take.label
        handle = str(task["taskUUID"])
        answer = await self._wire.call("POST", PATH, body=[task], submit=True, take=label)
        envelope = Envelope.read(answer.data)
        if envelope is not None and envelope.conflict(handle):
            return Submitted(handle=handle, already_existed=True)
        if not answer.ok:
            raise self._wire.error(answer, kinds={402: FailureKind.CREDITS}, take=label)
        if envelope is None:
            raise self._wire.malformed(answer, "expected {data} or {errors}", submit=True, take=label)
        if envelope.errors:
            raise self._refused(answer, envelope.errors[0], label)
        return Submitted(handle=handle)

    def _refused(self, answer: Answer, error: Mapping[str, Any], label: str) -> TerminalError:
        code, message = item_error(error)
        return TerminalError(
            self._wire.scrub(": ".join(p for p in (code, message) if p) or "refused"),
            kind=classify(code, message),
            provider=self.name,
            status=answer.status,
            url=answer.url,
            take=label,
        )

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        """Every handle in as few requests as possible (``max_poll_batch`` tasks per POST)."""
        found: dict[str, TaskStatus] = {}
        for start in range(0, len(handles), self.max_poll_batch):
            found.update(await self._poll_batch(handles[start : start + self.max_poll_batch]))
        return found

    async def _poll_batch(self, handles: Sequence[str]) -> dict[str, TaskStatus]:
        tasks = [{"taskType": "getResponse", "taskUUID": handle} for handle in handles]
        answer = await self._wire.call("POST", PATH, body=tasks)
        envelope = Envelope.read(answer.data)
        found = collect(envelope, handles) if envelope is not None else {}
        if not answer.ok and (_whole_request_failed(answer.status) or not found):
            raise self._wire.error(answer, kinds={402: FailureKind.CREDITS})
        if envelope is None:
            raise self._wire.malformed(answer, "expected {data} or {errors}", submit=False)
        return found

    async def cancel(self, handle: str) -> bool:
        """Runware has no cancel endpoint: a task in flight runs (and bills) to its end."""
        return False

    async def account(self) -> Account:
        """A lone ``authentication`` task: Runware's documented key check, which runs nothing and
        bills nothing (runware.ai/docs/platform/authentication; its schema answers
        ``{"data": [{"taskType": "authentication", "connectionSessionUUID": …}]}``)."""
        task = {"taskType": "authentication", "apiKey": self._key.reveal()}
        answer = await self._wire.call("POST", PATH, body=[task])
        if not answer.ok:
            raise self._wire.error(answer)
        envelope = Envelope.read(answer.data)
        if envelope is None or not envelope.items:
            raise self._wire.malformed(answer, "expected {data: [authentication]}", submit=False)
        return Account(checked_with="POST /v1 [authentication]")
