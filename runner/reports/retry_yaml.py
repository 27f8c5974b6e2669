"""``retry.yaml``: a manifest of exactly the takes that failed, ready to edit and run again.

Why: in the morning the question is "what do I do about the failures?". This file is the answer
in the form the tool already reads — the failed takes' shots with their seeds and settings (ratio
resolved, images made valid from the run directory), a comment above each shot giving each take's
failure. It names a run of its own (``<name>-retry``, beside the first), so running it is a
deliberate second try, never a silent re-purchase inside the first run's journal. Takes that were
paid but not saved are not in it: a plain rerun of the original fetches those for free.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from runner.manifest.document import Manifest
from runner.manifest.takes import ImageKind, ImageRef, Take

FILENAME = "retry.yaml"


def write_retry(manifest: Manifest, failed: Iterable[tuple[Take, str]], run_dir: Path) -> Path | None:
    """Write ``run_dir/retry.yaml`` for ``failed`` (take, failure text); remove a stale one if none."""
    path = run_dir / FILENAME
    by_shot: dict[str, list[tuple[Take, str]]] = {}
    for take, why in failed:
        by_shot.setdefault(take.shot, []).append((take, why))
    if not by_shot:
        path.unlink(missing_ok=True)
        return None
    text = render(manifest, by_shot, run_dir)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render(manifest: Manifest, by_shot: Mapping[str, list[tuple[Take, str]]], run_dir: Path) -> str:
    head = {
        "version": 1,
        "name": _retry_name(manifest.name),
        "provider": manifest.provider,
        "model": manifest.model,
        "concurrency": manifest.concurrency,
        "simulate": manifest.simulate,
        "output_dir": os.path.relpath(manifest.output_dir, run_dir),
    }
    lines = [
        f"# Retry of {manifest.name} ({manifest.path}): the takes that failed, with their seeds.",
        f"# Edit what caused the failures, then: previz run {run_dir / FILENAME}",
        _dump(head).rstrip(),
        "shots:",
    ]
    for takes in by_shot.values():
        lines += [f"  # {take.label} seed {take.seed}: {_one_line(why)}" for take, why in takes]
        lines.append(_indent(_dump([_shot(takes, run_dir)])))
    return "\n".join(lines) + "\n"


def _shot(takes: list[tuple[Take, str]], run_dir: Path) -> dict[str, Any]:
    first = takes[0][0]
    shot: dict[str, Any] = {
        "id": first.shot,
        "prompt": first.prompt,
        "image": _image(first.image, run_dir),
        "provider": first.provider,
        "model": first.model,
        "duration": first.duration,
        "ratio": first.ratio,
        "seeds": [take.seed for take, _ in takes],
    }
    if first.last_image is not None:
        shot["last_image"] = _image(first.last_image, run_dir)
    if first.moderation:
        shot["moderation"] = {"public_figure_threshold": first.moderation}
    if first.tags:
        shot["tags"] = list(first.tags)
    return shot


def _image(ref: ImageRef, run_dir: Path) -> str:
    """A local file relative to where retry.yaml lives; URLs and data URIs as they were."""
    if ref.kind is ImageKind.FILE and ref.path is not None:
        return os.path.relpath(ref.path, run_dir)
    return ref.source


def _retry_name(name: str) -> str:
    return (name[:58] + "-retry") if not name.endswith("-retry") else name


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else flat[:159] + "…"


def _dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.rstrip().splitlines())
