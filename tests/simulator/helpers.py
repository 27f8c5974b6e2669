"""Shared pieces of the simulator tests: request bodies, headers, waiting, and an MP4 box walker.

The box walker is written here, not imported from the simulator, so the check that clips are
valid MP4 does not trust the code that made them.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from runner.simulator import Simulator

T = TypeVar("T")

DATA = Path(__file__).parent / "data"
IMAGE = "https://assets.example.com/frames/harbor.jpg"
RUNWAY_VERSION = "2024-11-06"

# A 1×1 PNG, for data-URI inputs.
PNG_DATA_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def aiml_headers(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.keys['aimlapi']}"}


def runware_headers(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.keys['runware']}"}


def runway_headers(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.keys['runway']}", "X-Runway-Version": RUNWAY_VERSION}


def aiml_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "runway/gen4_turbo",
        "image_url": IMAGE,
        "prompt": "A lighthouse keeper braces against the wind",
        "aspect_ratio": "16:9",
        "duration": 5,
        "seed": 101,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def runware_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskType": "videoInference",
        "taskUUID": str(uuid.uuid4()),
        "model": "runway:1@1",
        "positivePrompt": "An aerial tram glides into a crystal gorge",
        "width": 1280,
        "height": 720,
        "duration": 6,
        "seed": 29718,
        "inputs": {"frameImages": [{"image": IMAGE, "frame": "first"}]},
        "deliveryMethod": "async",
        "includeCost": True,
    }
    task.update(overrides)
    return {k: v for k, v in task.items() if v is not None}


def runway_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gen4_turbo",
        "promptImage": IMAGE,
        "ratio": "1280:720",
        "duration": 5,
        "promptText": "The archivist steadies on the skiff",
        "seed": 8192,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def runware_examples() -> list[dict[str, Any]]:
    """The source document's five request/response pairs, verbatim."""
    doc = json.loads((DATA / "runware_examples.json").read_text())
    examples: list[dict[str, Any]] = doc["examples"]
    return examples


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, attempts: int = 500, interval: float = 0.01
) -> T:
    """Call ``probe`` until it returns something other than None (bounded, never a timed assert)."""
    for _ in range(attempts):
        result = await probe()
        if result is not None:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not reached after {attempts} tries")


async def get_json(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.json()


async def post_json(
    session: aiohttp.ClientSession, url: str, body: Any, *, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST ``body`` as JSON (streamed from a buffer, so multi-MB data URIs are fine)."""
    payload = io.BytesIO(json.dumps(body).encode())
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    async with session.post(url, data=payload, headers=all_headers) as response:
        return response.status, await response.json()


async def fetch(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    """(status, body, headers) of a GET."""
    async with session.get(url, **kwargs) as response:
        return response.status, await response.read(), response.headers


async def stats(session: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    status, body = await get_json(session, f"{sim.base_url}/_sim/stats")
    assert status == 200
    result: dict[str, Any] = body
    return result


def mp4_boxes(data: bytes) -> list[tuple[str, int]]:
    """Top-level ISO BMFF boxes as (type, size); AssertionError unless they tile the file exactly."""
    boxes: list[tuple[str, int]] = []
    offset = 0
    while offset < len(data):
        assert offset + 8 <= len(data), f"truncated box header at {offset}"
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        assert size >= 8, f"box {kind!r} at {offset} has impossible size {size}"
        assert offset + size <= len(data), f"box {kind!r} at {offset} runs past the end"
        boxes.append((kind, size))
        offset += size
    return boxes


def assert_mp4(data: bytes) -> list[str]:
    """The file is an MP4: starts with ftyp, has moov and mdat, and parses as a box sequence."""
    kinds = [kind for kind, _ in mp4_boxes(data)]
    assert kinds[0] == "ftyp", kinds
    assert "moov" in kinds and "mdat" in kinds, kinds
    return kinds
