"""YAML manifest → validated :class:`Manifest`; its expansion into takes, keys and seeds (DESIGN §2).

``load_manifest`` is the one entry point: it reads the file, checks everything that can be checked
offline — YAML syntax and duplicate keys (:mod:`runner.manifest.yamlpos`), shape
(:mod:`runner.manifest.schema`, worded by :mod:`runner.manifest.messages`), provider limits and
images (:mod:`runner.manifest.rules`) — and raises one :class:`~runner.errors.ManifestError`
with *every* problem, or returns a Manifest that the planner and the engine can trust without re-checking.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import ManifestError, Problem
from runner.manifest.gcpause import gc_paused
from runner.manifest.guard import compose_guarded, read_manifest
from runner.manifest.messages import check_shape
from runner.manifest.rules import check_rules
from runner.manifest.schema import ManifestDoc, json_schema, parse_deadline
from runner.manifest.takes import ImageRef, Take, derive_seed, take_key

__all__ = ["Manifest", "Shot", "json_schema", "load_manifest", "parse_deadline"]


@dataclass(frozen=True)
class Shot:
    """One shot with every field resolved (shot → defaults → top level → built-in default)."""

    id: str
    prompt: str
    image: ImageRef
    last_image: ImageRef | None
    duration: int
    ratio: str
    provider: str
    model: str
    seeds: tuple[int, ...] | None  # as listed; exclusive with takes
    takes: int | None  # as written; neither seeds nor takes means one take
    tags: tuple[str, ...]
    moderation: str | None = None  # Runway's public-figure threshold, when the manifest says

    def take_seeds(self) -> tuple[int, ...]:
        """The seed of each take, in take order: listed, or derived from the id and take number."""
        if self.seeds is not None:
            return self.seeds
        return tuple(derive_seed(self.id, n) for n in range(1, (self.takes or 1) + 1))

    def expand(self) -> Iterator[Take]:
        """This shot's takes, index 1-based, each with its key (images by content, not name)."""
        last = self.last_image.content_id if self.last_image else None
        for index, seed in enumerate(self.take_seeds(), start=1):
            key = take_key(
                provider=self.provider,
                model=self.model,
                prompt=self.prompt,
                image=self.image.content_id,
                last_image=last,
                duration=self.duration,
                ratio=self.ratio,
                seed=seed,
                moderation=self.moderation,
            )
            yield Take(
                shot=self.id,
                index=index,
                seed=seed,
                provider=self.provider,
                model=self.model,
                prompt=self.prompt,
                image=self.image,
                last_image=self.last_image,
                duration=self.duration,
                ratio=self.ratio,
                tags=self.tags,
                key=key,
                moderation=self.moderation,
            )


@dataclass(frozen=True)
class Manifest:
    """A checked manifest. ``output_dir`` is resolved against the manifest's folder (DESIGN §3), so a
    run started from cron or another directory finds its own journal."""

    path: Path
    name: str
    provider: str
    model: str
    concurrency: int
    budget_usd: float | None
    deadline: str | None
    simulate: bool
    output_dir: Path
    shots: tuple[Shot, ...]
    #: Not errors, but worth a look before a night is spent (a ratio unlike the plate's).
    warnings: tuple[Problem, ...] = ()

    def takes(self) -> Iterator[Take]:
        """Every take, lazily, in a deterministic order: shot order, then take index."""
        for shot in self.shots:
            yield from shot.expand()

    def take_count(self) -> int:
        return sum(len(shot.take_seeds()) for shot in self.shots)

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name


def _read_text(path: Path) -> str:
    raw = read_manifest(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        raise ManifestError([Problem(str(path), line, column, "", message)]) from None


def load_manifest(path: Path) -> Manifest:
    """Read and check a manifest offline (no network). Raises ManifestError with every problem.

    The cyclic collector is paused meanwhile (:mod:`runner.manifest.gcpause`): it would otherwise spend more
    than the YAML parser does walking the big, still-alive structures being built. The work is done
    in :func:`_check`, so that its intermediate structures (a position for every value) are freed
    before the collector is back on, rather than walked once more by its first pass.
    """
    with gc_paused():
        return _check(path)


def _check(path: Path) -> Manifest:
    file = str(path)
    located = compose_guarded(_read_text(path), file)
    shape = check_shape(located, file)
    rules = check_rules(located, file, shape.bad, path.parent)
    problems = list(dict.fromkeys((*located.problems, *shape.problems, *rules.problems)))
    if problems or shape.doc is None:
        raise ManifestError(problems)
    return _build(path, shape.doc, rules.shots, rules.warnings)


def _build(
    path: Path, doc: ManifestDoc, shots: tuple[dict[str, Any], ...], warnings: tuple[Problem, ...]
) -> Manifest:
    return Manifest(
        path=path,
        name=doc.name,
        provider=doc.provider,
        model=doc.model,
        concurrency=doc.concurrency,
        budget_usd=doc.budget_usd,
        deadline=doc.deadline,
        simulate=doc.simulate,
        output_dir=Path(os.path.abspath(path.parent / doc.output_dir)),  # no disk access: checked later
        shots=tuple(Shot(**fields) for fields in shots),
        warnings=warnings,
    )
