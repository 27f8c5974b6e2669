"""``previz reroll``: a manifest of N new takes of chosen shots — same prompt, image and settings, new seeds.

Why a manifest and not a flag on ``run``: "four more of this shot" is a purchase, and it should be
one the artist can read before making it. Like ``retry.yaml`` the file is written beside the run,
names a run of its own (``<name>-reroll``; ``-reroll-2``, ``-reroll-3`` … for later rounds, so each
round's takes and spend are kept apart), and validates and runs as it is.

Seeds are new and deterministic. Each is derived from the shot id, the round and a counter, skipping
every seed the shot has had already — the manifest's own, the run's journal's, and every earlier
round's — so the takes are new ones, never a take already paid for. A round is the first whose run
directory holds no journal yet: until it is run, writing it again gives the same seeds (running it
twice resumes instead of rolling new dice); once it is run, the next ``previz reroll`` is a new round.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import InputError
from runner.manifest.document import Manifest, Shot
from runner.manifest.schema import MAX_NAME, MAX_TAKES
from runner.manifest.takes import derive_seed
from runner.reports.atomic import write_text
from runner.reports.retry_yaml import _dump, _indent, _shot
from runner.store.factory import open_store
from runner.store.sqlite import FILENAME

_ROUND = re.compile(r"-reroll(?:-(\d+))?$")


@dataclass(frozen=True)
class Rerolled:
    path: Path
    name: str  # the run it makes: <name>-reroll[-N]
    round: int
    seeds: dict[str, list[int]]  # shot → its new seeds


def round_name(base: str, number: int) -> str:
    """``<base>-reroll`` for round 1, ``<base>-reroll-N`` after, cut to the manifest's name limit."""
    suffix = "-reroll" if number == 1 else f"-reroll-{number}"
    return base[: MAX_NAME - len(suffix)] + suffix


def write_reroll(run_dir: Path, manifest: Manifest, shot_ids: Sequence[str], takes: int) -> Rerolled:
    """Write the next round's manifest beside ``run_dir``; InputError (nothing written) on bad input."""
    if not 1 <= takes <= MAX_TAKES:
        raise InputError(f"--takes {takes}: must be 1–{MAX_TAKES} (a manifest's limit for one shot)")
    shots = _shots(manifest, shot_ids)
    base = _ROUND.sub("", manifest.name)
    number = _next_round(run_dir.parent, base)
    name = round_name(base, number)
    rounds = [run_dir, run_dir.parent / base] + [
        run_dir.parent / round_name(base, n) for n in range(1, number)
    ]
    seen = _seen_seeds(dict.fromkeys(rounds))
    seeds = {s.id: _new_seeds(s, number, takes, seen.get(s.id, set()) | set(s.take_seeds())) for s in shots}
    path = run_dir / ("reroll.yaml" if number == 1 else f"reroll-{number}.yaml")
    text = _render(manifest, name, shots, seeds, path)
    write_text(path, text, "the reroll manifest")
    return Rerolled(path, name, number, seeds)


def _shots(manifest: Manifest, shot_ids: Sequence[str]) -> list[Shot]:
    by_id = {s.id: s for s in manifest.shots}
    unknown = [s for s in shot_ids if s not in by_id]
    if unknown:
        known = ", ".join(list(by_id)[:8]) + (", …" if len(by_id) > 8 else "")
        first = unknown[0]
        raise InputError(f"argument {first!r}: no shot {first!r} in {manifest.path} (shots: {known})")
    return [by_id[s] for s in dict.fromkeys(shot_ids)]


def _next_round(folder: Path, base: str) -> int:
    number = 1
    while (folder / round_name(base, number) / FILENAME).exists():
        number += 1
    return number


def _seen_seeds(run_dirs: Iterable[Path]) -> dict[str, set[int]]:
    """Every seed each shot has had in these run directories' journals."""
    seen: dict[str, set[int]] = {}
    for run_dir in run_dirs:
        if not (run_dir / FILENAME).is_file():
            continue
        journal = open_store(run_dir, readonly=True)
        try:
            records = journal.records().values()
        finally:
            journal.close()
        for record in records:  # edited takes too, not only each number's latest
            seen.setdefault(str(record.spec.get("shot")), set()).add(int(record.spec.get("seed") or 0))
    return seen


def _new_seeds(shot: Shot, number: int, takes: int, seen: set[int]) -> list[int]:
    out: list[int] = []
    counter = 0
    while len(out) < takes:
        counter += 1
        seed = derive_seed(f"{shot.id}\0reroll-{number}", counter)
        if seed not in seen and seed not in out:
            out.append(seed)
    return out


def _render(manifest: Manifest, name: str, shots: list[Shot], seeds: dict[str, list[int]], path: Path) -> str:
    run_dir = path.parent
    head: dict[str, object] = {
        "version": 1,
        "name": name,
        "provider": manifest.provider,
        "model": manifest.model,
        "concurrency": manifest.concurrency,
        "simulate": manifest.simulate,
        "output_dir": os.path.relpath(run_dir.parent, run_dir),
    }
    if manifest.budget_usd is not None:
        head["budget_usd"] = manifest.budget_usd
    lines = [
        f"# New takes of {manifest.name} ({manifest.path}): same prompt, image and settings, new seeds.",
        f"# Seeds no take of these shots had before; it runs as {name}: previz run {path}",
        _dump(head).rstrip(),
        "shots:",
    ]
    for shot in shots:
        first = next(shot.expand())
        entry = _shot([(first, "")], run_dir) | {"seeds": seeds[shot.id]}
        lines.append(f"  # {shot.id}: {len(seeds[shot.id])} new takes")
        lines.append(_indent(_dump([entry])))
    return "\n".join(lines) + "\n"
