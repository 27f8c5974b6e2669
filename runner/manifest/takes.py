"""A take: one submission's worth of work, and the identities derived from it.

Kept apart from the manifest parser so the engine, the journal and the provider adapters
depend only on this small, stable shape (arq's lesson: a job's spec apart from its outcome).

Identities are deterministic so that a rerun of the same manifest finds the same takes:

* ``take_key``: sha256 over everything that changes the result (DESIGN §2). Same key = same take.
* ``derive_seed``: seeds for ``takes: N`` come from the shot id and take number, never from chance.
* ``task_uuid``: Runware's client-chosen taskUUID, v4-shaped, from the key and the attempt number,
  so resending the same attempt is idempotent while a deliberate new attempt is a new task.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SEED_MAX = 4_294_967_295


class ImageKind(StrEnum):
    FILE = "file"
    URL = "url"
    DATA = "data"


@dataclass(frozen=True)
class ImageRef:
    """An input image as the manifest named it, with what was learned by checking it offline.

    ``content_id`` is the sha256 of the bytes for files and data URIs, and the URL string itself
    for https URLs (we never fetch those): it is what goes into the take key.
    """

    source: str
    kind: ImageKind
    content_id: str
    path: Path | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class Take:
    """One take of one shot, fully resolved: what the engine submits and the ledger records."""

    shot: str
    index: int
    seed: int
    provider: str
    model: str
    prompt: str
    image: ImageRef
    last_image: ImageRef | None
    duration: int
    ratio: str
    tags: tuple[str, ...]
    key: str
    #: Runway's ``contentModeration.publicFigureThreshold`` (``auto`` | ``low``); None: not sent.
    moderation: str | None = None
    #: A take of an earlier version of the manifest, still in flight in the journal: collected by
    #: its task id, never sent again (``runner.engine.strays``).
    earlier: bool = False

    @property
    def label(self) -> str:
        """Human name used in progress lines and error messages: ``shot#t02``."""
        return f"{self.shot}#t{self.index:02d}"

    @property
    def relpath(self) -> str:
        """Where the verified clip lives inside the run directory."""
        return f"{self.shot}/{self.shot}_t{self.index:02d}_s{self.seed}.mp4"


def take_key(
    *,
    provider: str,
    model: str,
    prompt: str,
    image: str,
    last_image: str | None,
    duration: int,
    ratio: str,
    seed: int,
    moderation: str | None = None,
) -> str:
    """Hash of everything that changes a take's result. Images are given by their ``content_id``.

    ``moderation`` joins the hash only when set, so a manifest that never says it keeps its keys.
    """
    payload: dict[str, object] = {
        "v": 1,
        "provider": provider,
        "model": model,
        "prompt": prompt,
        "image": image,
        "last_image": last_image,
        "duration": duration,
        "ratio": ratio,
        "seed": seed,
    }
    if moderation is not None:
        payload["moderation"] = moderation
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def derive_seed(shot_id: str, take_number: int) -> int:
    """Seed for take ``take_number`` (1-based) of a shot that asked for ``takes: N``.

    Depends only on the shot id and the take number: editing the prompt keeps the seeds, so the
    new takes are comparable with the old ones, and the same manifest always rolls the same dice.
    """
    digest = hashlib.sha256(f"previz-seed/v1\0{shot_id}\0{take_number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (SEED_MAX + 1)


def task_uuid(key: str, attempt: int = 1) -> str:
    """Runware taskUUID for attempt ``attempt`` of the take with ``key`` (a v4-shaped UUID)."""
    digest = hashlib.sha256(f"{key}\0attempt={attempt}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))
