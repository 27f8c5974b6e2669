"""The cost/seed ledger: one row per attempt that reached an end, appended and never rewritten.

``ledger.csv`` is for people and spreadsheets, ``ledger.jsonl`` for scripts. Both are projections
of the journal's ``rows`` table (:mod:`runner.journal`), where a row is committed in the same
transaction as the take's end: :class:`LedgerFiles` appends whatever rows a file does not hold yet
(by ``seq``), so a kill between the commit and the append loses nothing — the next run writes it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.errors import FailureKind
from runner.events import Outcome
from runner.takes import Take

if TYPE_CHECKING:
    from runner.journal import Journal

COLUMNS = (
    "run_id",
    "manifest",
    "shot",
    "take",
    "seed",
    "provider",
    "model",
    "task_id",
    "status",
    "failure_kind",
    "failure_message",
    "duration_s",
    "ratio",
    "prompt",
    "image",
    "cost_usd",
    "cost_source",
    "submitted_at",
    "finished_at",
    "generation_s",
    "attempts",
    "output",
    "bytes",
    "sha256",
    "key",
    "flags",
    "tags",
    "clip_duration_s",
    "width",
    "height",
    "seq",
)

#: Failures a plain rerun does not repeat (they would fail the same way): ``--retry-failed`` does.
STICKY_FAILURES = frozenset({FailureKind.INPUT, FailureKind.MODERATION})


def spec_of(t: Take) -> dict[str, Any]:
    """The take's own fields as the ledger shows them (what the journal keeps for ``status``)."""
    return {
        "shot": t.shot,
        "take": t.index,
        "seed": t.seed,
        "provider": t.provider,
        "model": t.model,
        "duration_s": t.duration,
        "ratio": t.ratio,
        "prompt": t.prompt,
        "image": t.image.source if t.image.kind != "data" else f"data:…sha256={t.image.content_id[:12]}",
        "tags": ";".join(t.tags),
    }


def row_of(outcome: Outcome, *, run_id: str, manifest: str) -> dict[str, Any]:
    t = outcome.take
    spec = spec_of(t)
    return {
        "run_id": run_id,
        "manifest": manifest,
        "shot": t.shot,
        "take": t.index,
        "seed": t.seed,
        "provider": t.provider,
        "model": t.model,
        "task_id": outcome.task_id,
        "status": outcome.status.value,
        "failure_kind": outcome.failure_kind.value if outcome.failure_kind else None,
        "failure_message": outcome.failure_message,
        "duration_s": t.duration,
        "ratio": t.ratio,
        "prompt": t.prompt,
        "image": spec["image"],
        "cost_usd": None if outcome.cost_usd is None else round(outcome.cost_usd, 6),
        "cost_source": outcome.cost_source,
        "submitted_at": _iso(outcome.submitted_at),
        "finished_at": _iso(outcome.finished_at),
        "generation_s": None if outcome.generation_s is None else round(outcome.generation_s, 3),
        "attempts": outcome.attempts,
        "output": outcome.output,
        "bytes": outcome.bytes,
        "sha256": outcome.sha256,
        "key": t.key,
        "flags": ";".join(outcome.flags),
        "tags": spec["tags"],
        "clip_duration_s": None if outcome.clip_duration_s is None else round(outcome.clip_duration_s, 3),
        "width": outcome.width,
        "height": outcome.height,
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class LedgerFiles:
    """``ledger.csv`` and ``ledger.jsonl``, kept up to date with the journal's rows."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        csv_path, jsonl_path = run_dir / "ledger.csv", run_dir / "ledger.jsonl"
        new_csv = not csv_path.exists() or csv_path.stat().st_size == 0
        for path in (csv_path, jsonl_path):
            _end_torn_line(path)
        self._csv_seq = _last_seq(_csv_rows(csv_path))
        self._jsonl_seq = _last_seq(_rows(jsonl_path))
        self._csv: TextIO = csv_path.open("a", newline="", encoding="utf-8")
        self._jsonl: TextIO = jsonl_path.open("a", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=COLUMNS, extrasaction="ignore")
        if new_csv:
            self._writer.writeheader()
        self.failed: str | None = None

    def sync(self, journal: Journal) -> int:
        """Append the journal's rows that either file lacks. Returns rows appended.

        Written through to the OS at once (a killed process loses nothing), fsynced only at
        :meth:`close`: the journal is the durable record, committed with ``synchronous=FULL``
        before this runs, and a run after a power cut appends whatever rows the files lost.

        A write that fails (a full disk) stops the files for this run, not the run: the journal
        holds every row, and the next run appends what is missing. ``failed`` says why.
        """
        if self.failed:
            return 0
        try:
            return self._append(journal)
        except OSError as exc:
            self.failed = f"cannot write the ledger files ({exc.strerror or exc}); the journal keeps the rows"
            return 0

    def _append(self, journal: Journal) -> int:
        written = 0
        for seq, row in journal.rows_after(min(self._csv_seq, self._jsonl_seq)):
            full = {**{c: row.get(c) for c in COLUMNS}, **row, "seq": seq}
            if seq > self._jsonl_seq:
                self._jsonl.write(json.dumps(full, ensure_ascii=False, allow_nan=False) + "\n")
                self._jsonl_seq = seq
                written += 1
            if seq > self._csv_seq:
                self._writer.writerow({k: "" if v is None else v for k, v in full.items()})
                self._csv_seq = seq
        if written:
            for fh in (self._csv, self._jsonl):
                fh.flush()
        return written

    def close(self) -> None:
        for fh in (self._csv, self._jsonl):
            try:
                try:
                    if not fh.closed:
                        fh.flush()
                        os.fsync(fh.fileno())
                finally:
                    fh.close()
            except OSError as exc:  # buffered bytes that a full disk refused: the next run rewrites them
                self.failed = self.failed or f"cannot write the ledger files ({exc.strerror or exc})"


def _last_seq(rows: Iterator[dict[str, Any]]) -> int:
    last = 0
    for row in rows:
        seq = row.get("seq")
        if isinstance(seq, int) or (isinstance(seq, str) and seq.isdigit()):
            last = max(last, int(seq))
    return last


def _end_torn_line(path: Path) -> None:
    """A crash mid-write leaves a last line without its newline: end it, so the next row stands alone."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a ``ledger.jsonl``, one at a time; a torn line (crash mid-write) is skipped, not fatal."""
    return _rows(path)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row
