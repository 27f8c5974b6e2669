"""Which manifest made a run directory, and the takes of that run as the morning's commands see them.

Why a module of its own: ``select``, ``export``, ``reroll`` and ``report.html`` all start from a run
directory alone, and each needs the manifest behind it — its shot order (editorial wants the cut in
script order), its first-frame images, its settings for new takes. ``summary.json`` names the
manifest with its absolute path (``manifest_path``); older run directories named it only as it was
typed (``manifest``, maybe relative to wherever the run was started), which is tried too. A manifest
found must name this run (its ``name`` is the run directory's), or it is not this run's.

Takes are read from the journal (read-only: a run may still be going) and indexed by shot and take
number. A take whose manifest entry was edited since keeps its old key: one shot and take number
can then name two records, and the done one — the last to finish — is the take that counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import InputError, ManifestError
from runner.manifest.document import Manifest, load_manifest
from runner.store.factory import open_store
from runner.store.records import Record
from runner.store.sqlite import FILENAME


def find_manifest(run_dir: Path, given: Path | None = None) -> Manifest:
    """The manifest of ``run_dir``: ``given``, or the one its ``summary.json`` or ledger names."""
    tried = [given] if given is not None else _named(run_dir)
    for path in tried:
        if path is not None and path.is_file():
            return _checked(run_dir, path)
    named = ", ".join(f"'{p}'" for p in tried if p is not None) or "nothing"
    raise InputError(
        f"{run_dir}: cannot find the manifest this run was made from (the run names {named}); "
        "give it with --manifest FILE"
    )


def maybe_manifest(run_dir: Path) -> Manifest | None:
    """:func:`find_manifest` for pages that can do without one (the contact sheet): None if not found."""
    try:
        return find_manifest(run_dir)
    except InputError:
        return None


def _named(run_dir: Path) -> list[Path | None]:
    found: list[Path | None] = []
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    if isinstance(summary, dict):
        found += [Path(summary[k]) for k in ("manifest_path", "manifest") if isinstance(summary.get(k), str)]
    ledger = run_dir / "ledger.jsonl"
    try:
        with ledger.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline() or "{}")
    except (OSError, ValueError):
        first = {}
    if isinstance(first, dict) and isinstance(first.get("manifest"), str):
        found.append(Path(first["manifest"]))
    return list(dict.fromkeys(found))


def _checked(run_dir: Path, path: Path) -> Manifest:
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        first = exc.problems[0] if exc.problems else "it does not validate"
        raise InputError(f"{path}: the manifest of {run_dir} does not validate now ({first})") from None
    if manifest.name != run_dir.name:
        raise InputError(f"{path}: names the run '{manifest.name}', not this run directory ({run_dir})")
    return manifest


@dataclass(frozen=True)
class RunTakes:
    """A run directory's takes by (shot, take number), its selects, and its shots in first-seen order."""

    run_dir: Path
    by_number: Mapping[tuple[str, int], Record]
    selects: Mapping[str, tuple[str, str]]  # key → (who, when)

    @property
    def shots(self) -> dict[str, list[int]]:
        """Each shot's take numbers, in order."""
        out: dict[str, list[int]] = {}
        for shot, number in sorted(self.by_number):
            out.setdefault(shot, []).append(number)
        return out

    def selected(self) -> dict[str, Record]:
        """Each shot's select (the journal keeps at most one per shot): shot → record."""
        keys = set(self.selects)
        return {shot: r for (shot, _), r in sorted(self.by_number.items()) if r.key in keys}


def read_takes(run_dir: Path) -> RunTakes:
    """The journal's takes of ``run_dir`` (read-only), indexed by shot and take number."""
    if not (run_dir / FILENAME).is_file():
        raise InputError(f"{run_dir}: no {FILENAME} here; give a run directory")
    journal = open_store(run_dir, readonly=True)
    try:
        records, selects = journal.records(), journal.selects()
    finally:
        journal.close()
    return RunTakes(run_dir, index(records.values()), selects)


def index(records: Iterable[Record]) -> dict[tuple[str, int], Record]:
    """(shot, take) → record; of two records with one number, a done one, the latest to finish."""
    out: dict[tuple[str, int], Record] = {}
    for record in records:
        spec = record.spec
        where = (str(spec.get("shot")), int(spec.get("take") or 0))
        if where not in out or _rank(record) >= _rank(out[where]):
            out[where] = record
    return out


def _rank(record: Record) -> tuple[bool, str]:
    return record.state == "done", record.finished_at or ""
