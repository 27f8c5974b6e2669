"""The hostile server's echo modes: a provider that hands our key back, and terminal escapes.

A real aiohttp.web app that speaks all three wire shapes at once (AIML ``/v2/video/generations``,
Runware ``POST /v1``, Runway ``/v1/image_to_video`` and ``/v1/tasks/{id}``), so one run sends a
take of each mode to each provider. A take's mode is the last word of its prompt (``mode=…``):

Each provider's answers echo the key that provider was sent (its ``Authorization`` header).

* ``message`` — the task fails, its failure message (AIML ``error.message``, Runware
  ``errors[].message``, Runway ``failure``) echoing the key in every form: whole, upper-cased,
  URL-encoded, base64, base64 of ``user:key``, a 6-character piece, with escapes and line breaks;
* ``expired`` — the task succeeds with a result URL holding the key in its path and query, which
  answers 410 (the runner refreshes it, then gives up naming the URL);
* ``location`` — the result URL redirects to an ``ftp://user:key@…/<key>`` ``Location``;
* ``handle-key`` / ``handle-escape`` (AIML and Runway, whose task ids the server picks) — the
  submit answers with a task id holding the key, or ``\\x1b[2J``, an OSC title and CR/LF.

:attr:`Echo.seen` counts the requests by kind, so a test can show the runner spoke to each mode.
"""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

ESCAPES = "\x1b[2J\x1b]0;pwned\x07\r\n\x1b[31m"
MODES = ("message", "expired", "location", "handle-key", "handle-escape")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def echoed(key: str) -> str:
    """A failure message that holds the key every way a server might write it."""
    return (
        f"invalid key {key}{ESCAPES} upper {key.upper()} url {quote(key, safe='')} b64 {b64(key)} "
        f"urlsafe {base64.urlsafe_b64encode(key.encode()).decode()} basic {b64('user:' + key)} "
        f"hint {key[9:15]}…{key[-6:]}****"
    )


@dataclass
class Echo:
    base_url: str = ""
    modes: dict[str, str] = field(default_factory=dict)  # task id → mode
    seen: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def new_id(self, mode: str, key: str) -> str:
        n = next(self._ids)
        if mode == "handle-key":
            return f"task-{key}-{n}"
        if mode == "handle-escape":
            return f"task{ESCAPES}{n}"
        return f"task-{n}"

    def result_url(self, mode: str, key: str) -> str:
        if mode == "location":
            return f"{self.base_url}/hop/{quote(key, safe='')}"
        return (
            f"{self.base_url}/cdn/{quote(key, safe='')}/clip.mp4?x={quote(key, safe='')}&b={quote(b64(key))}"
        )


def _key(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _mode_of(prompt: object) -> str:
    word = str(prompt or "").rsplit(" ", 1)[-1]
    return word.removeprefix("mode=") if word.startswith("mode=") else "message"


# --- the three wire shapes --------------------------------------------------------------------------


def _aiml_task(echo: Echo, handle: str, key: str) -> dict[str, Any]:
    mode = echo.modes.get(handle, "message")
    if mode in ("expired", "location"):
        return {"id": handle, "status": "completed", "video": {"url": echo.result_url(mode, key)}}
    return {"id": handle, "status": "error", "error": {"name": "InvalidKey", "message": echoed(key)}}


def _runway_task(echo: Echo, handle: str, key: str) -> dict[str, Any]:
    mode = echo.modes.get(handle, "message")
    if mode in ("expired", "location"):
        return {"id": handle, "status": "SUCCEEDED", "output": [echo.result_url(mode, key)]}
    return {"id": handle, "status": "FAILED", "failureCode": "ASSET.INVALID", "failure": echoed(key)}


def _runware(echo: Echo, tasks: list[dict[str, Any]], key: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for task in tasks:
        kind, uuid = task.get("taskType"), str(task.get("taskUUID"))
        if kind == "authentication":
            data.append({"taskType": "authentication", "connectionSessionUUID": "s-1"})
        elif kind == "videoInference":
            echo.modes[uuid] = _mode_of(task.get("positivePrompt"))
            data.append({"taskType": "videoInference", "taskUUID": uuid})
        elif echo.modes.get(uuid) in ("expired", "location"):
            url = echo.result_url(echo.modes[uuid], key)
            data.append(
                {"taskType": "videoInference", "taskUUID": uuid, "status": "success", "videoURL": url}
            )
        else:
            errors.append({"code": "invalidApiKey", "message": echoed(key), "taskUUID": uuid})
    return {"data": data, "errors": errors} if errors else {"data": data}


def _side_routes(echo: Echo, app: web.Application) -> None:
    """The account checks (the pre-flight passes) and the CDN the result URLs point at."""

    async def organization(request: web.Request) -> web.Response:
        tier = {"gen4_turbo": {"maxConcurrentGenerations": 5, "maxDailyGenerations": 1000}}
        return web.json_response({"creditBalance": 10**6, "tier": {"models": tier}, "usage": {"models": {}}})

    async def balance(request: web.Request) -> web.Response:
        return web.json_response({"balance": 10**9})

    async def cdn(request: web.Request) -> web.Response:
        echo.seen["cdn"] += 1
        return web.Response(status=410, text=f"gone: {unquote(request.match_info['tail'])}")

    async def hop(request: web.Request) -> web.Response:
        echo.seen["hop"] += 1
        key = unquote(request.match_info["tail"])
        quoted = quote(key, safe="")
        target = f"ftp://user:{quoted}@cdn.example/{quoted}/{b64('user:' + key)}/{key.upper()}.mp4"
        return web.Response(status=302, headers={"Location": target})

    app.router.add_get("/v1/billing/balance", balance)
    app.router.add_get("/v1/organization", organization)
    app.router.add_get("/cdn/{tail:.*}", cdn)
    app.router.add_get("/hop/{tail:.*}", hop)


def echo_app(echo: Echo) -> web.Application:
    async def aiml_submit(request: web.Request) -> web.Response:
        body = await request.json()
        mode = _mode_of(body.get("prompt"))
        handle = echo.new_id(mode, _key(request))
        echo.modes[handle] = mode
        echo.seen[f"aimlapi submit {mode}"] += 1
        return web.json_response({"id": handle, "status": "queued"})

    async def aiml_poll(request: web.Request) -> web.Response:
        echo.seen["aimlapi poll"] += 1
        return web.json_response(_aiml_task(echo, request.query.get("generation_id", ""), _key(request)))

    async def runway_submit(request: web.Request) -> web.Response:
        body = await request.json()
        mode = _mode_of(body.get("promptText"))
        handle = echo.new_id(mode, _key(request))
        echo.modes[handle] = mode
        echo.seen[f"runway submit {mode}"] += 1
        return web.json_response({"id": handle})

    async def runway_poll(request: web.Request) -> web.Response:
        echo.seen["runway poll"] += 1
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response(_runway_task(echo, request.match_info["id"], _key(request)))

    async def runware(request: web.Request) -> web.Response:
        echo.seen["runware"] += 1
        return web.json_response(_runware(echo, await request.json(), _key(request)))

    app = web.Application()
    app.router.add_post("/v2/video/generations", aiml_submit)
    app.router.add_get("/v2/video/generations", aiml_poll)
    app.router.add_post("/v1/image_to_video", runway_submit)
    app.router.add_route("*", "/v1/tasks/{id:.*}", runway_poll)
    app.router.add_post("/v1", runware)
    _side_routes(echo, app)
    return app
