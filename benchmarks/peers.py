"""The peers previz is measured against: how each vendor's own client waits for a task.

Each peer runs the same takes on the same simulator with ``concurrency`` workers that each take
the next take, submit it, and poll it until it is terminal (a list schedule, like previz). Every
wait is multiplied by the run's time scale, so all clients live in the same simulated time.

* ``runway-sdk``: the official ``runwayml`` SDK itself — ``image_to_video.create`` then
  ``wait_for_task_output``, which sleeps ``POLL_TIME ± POLL_JITTER/2`` (6 ± 1.5 s) before every poll.
  Its two module constants are scaled; nothing else is touched.
* ``aiml-10s``: the AIML SDK's and docs' way — poll right after submit, then every 10 s.
* ``runware-3s``: the Runware WebSocket SDK's delay — each task polled on its own every 3 s
  (one ``getResponse`` per request).

Request bodies come from previz's own adapters (``build_body`` / ``build_task``), so every client
asks for the same clips; only the waiting differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import anyio

from runner.manifest.takes import Take
from runner.providers import aimlapi, runware, runway
from runner.providers.base import SubmitRequest

Notices = dict[str, float]  # task id -> simulated second the client saw it terminal
Clock = Callable[[], float]  # simulated seconds now

PEER_OF = {"aimlapi": "aiml-10s", "runware": "runware-3s", "runway": "runway-sdk"}
TERMINAL = {
    "aimlapi": {"completed", "error", "failed"},
    "runware": {"success", "error"},
}


def _request(take: Take) -> SubmitRequest:
    return SubmitRequest(take, image=take.image.source)


async def _post(session: aiohttp.ClientSession, url: str, key: str, body: Any) -> Any:
    """POST until the server takes it (a capacity 429 or a 5xx is retried after a short pause)."""
    for _ in range(50):
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
            if resp.status < 300:
                return await resp.json()
        await anyio.sleep(0.05)
    raise RuntimeError(f"submit to {url} kept failing")


class Peer:
    """One provider's peer client: ``run`` drives the takes and fills ``notices``."""

    def __init__(self, provider: str, base_url: str, key: str, scale: float, clock: Clock) -> None:
        self.provider = provider
        self.base_url = base_url
        self.key = key
        self.scale = scale
        self.clock = clock
        self.notices: Notices = {}
        self._sdk: Any = None

    async def run(self, takes: Sequence[Take], concurrency: int) -> None:
        from runwayml import AsyncRunwayML

        queue = list(reversed(takes))
        async with (
            aiohttp.ClientSession() as session,
            AsyncRunwayML(api_key=self.key, base_url=self.base_url) as self._sdk,
        ):

            async def worker() -> None:
                while queue:
                    await self.one(session, queue.pop())

            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker)

    async def one(self, session: aiohttp.ClientSession, take: Take) -> None:
        if self.provider == "aimlapi":
            await self._aiml(session, take)
        elif self.provider == "runware":
            await self._runware(session, take)
        else:
            await self._runway(take)

    async def _aiml(self, session: aiohttp.ClientSession, take: Take) -> None:
        url = self.base_url + aimlapi.PATH
        created = await _post(session, url, self.key, aimlapi.build_body(_request(take)))
        task_id = created["id"]
        headers = {"Authorization": f"Bearer {self.key}"}
        while True:
            async with session.get(url, params={"generation_id": task_id}, headers=headers) as resp:
                answer = await resp.json() if resp.status == 200 else {}
            if answer.get("status") in TERMINAL["aimlapi"]:
                self.notices[task_id] = self.clock()
                return
            await anyio.sleep(10.0 * self.scale)

    async def _runware(self, session: aiohttp.ClientSession, take: Take) -> None:
        url = self.base_url + runware.PATH
        task = runware.build_task(_request(take))
        await _post(session, url, self.key, [task])
        poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
        while True:
            await anyio.sleep(3.0 * self.scale)
            async with session.post(url, json=poll, headers={"Authorization": f"Bearer {self.key}"}) as resp:
                answer = await resp.json()
            items = [*(answer.get("data") or []), *(answer.get("errors") or [])]
            if any(item.get("status") in TERMINAL["runware"] for item in items):
                self.notices[task["taskUUID"]] = self.clock()
                return

    async def _runway(self, take: Take) -> None:
        from runwayml import TaskFailedError

        body = runway.build_body(_request(take))
        created = await self._sdk.image_to_video.create(
            model=body["model"],
            prompt_image=body["promptImage"],
            ratio=body["ratio"],
            duration=body["duration"],
            seed=body["seed"],
            prompt_text=body.get("promptText", ""),
        )
        with contextlib.suppress(TaskFailedError):  # a failed task is noticed all the same
            await created.wait_for_task_output(timeout=None)
        self.notices[created.id] = self.clock()


def scale_runway_sdk(scale: float) -> None:
    """The SDK's waiter sleeps POLL_TIME ± POLL_JITTER/2 real seconds: make them simulated ones."""
    from runwayml.lib import polling

    polling.POLL_TIME = polling.POLL_TIME * scale
    polling.POLL_JITTER = polling.POLL_JITTER * scale
