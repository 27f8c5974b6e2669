"""The cost/seed ledger: one row per take that reached an end, appended and never rewritten.

``ledger.csv`` is for people and spreadsheets, ``ledger.jsonl`` for scripts; both get the same
row, flushed and fsynced before the engine moves on. Until the SQLite journal lands, the ledger is
also the record a rerun reads (:class:`History`) to skip takes that are already done.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from runner.errors import FailureKind
from runner.events import Event, Kind, Outcome, TakeStatus
from runner.takes import Take

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
)

#: Failures a plain rerun does not repeat (they would fail the same way): ``--retry-failed`` does.
STICKY_FAILURES = frozenset({FailureKind.INPUT, FailureKind.MODERATION})


def row_of(outcome: Outcome, *, run_id: str, manifest: str) -> dict[str, Any]:
    t = outcome.take
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
        "image": t.image.source if t.image.kind != "data" else f"data:…sha256={t.image.content_id[:12]}",
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
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class Ledger:
    """Subscriber that appends a row for every FINISHED event."""

    def __init__(self, run_dir: Path, *, run_id: str, manifest: str) -> None:
        self.run_id = run_id
        self.manifest = manifest
        run_dir.mkdir(parents=True, exist_ok=True)
        csv_path = run_dir / "ledger.csv"
        new_csv = not csv_path.exists() or csv_path.stat().st_size == 0
        for path in (csv_path, run_dir / "ledger.jsonl"):
            _end_torn_line(path)
        self._csv: TextIO = csv_path.open("a", newline="", encoding="utf-8")
        self._jsonl: TextIO = (run_dir / "ledger.jsonl").open("a", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=COLUMNS)
        if new_csv:
            self._writer.writeheader()
        self.rows = 0

    def __call__(self, event: Event) -> None:
        if event.kind is Kind.FINISHED and event.outcome is not None:
            self.append(event.outcome)

    def append(self, outcome: Outcome) -> None:
        row = row_of(outcome, run_id=self.run_id, manifest=self.manifest)
        self._writer.writerow({k: "" if v is None else v for k, v in row.items()})
        self._jsonl.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        for fh in (self._csv, self._jsonl):
            fh.flush()
            os.fsync(fh.fileno())
        self.rows += 1

    def close(self) -> None:
        self._csv.close()
        self._jsonl.close()


@dataclass(frozen=True)
class Past:
    """What earlier runs recorded of one take key."""

    attempts: int  # rows written for this key (each row = one deliberate attempt that ended)
    done: bool
    last_status: str
    last_failure: str | None


class History:
    """The ledger rows of earlier runs, by take key: what to skip and which attempt comes next."""

    def __init__(self, past: dict[str, Past], spent_usd: float = 0.0) -> None:
        self._past = past
        #: What earlier runs of this manifest cost, by the ledger (for the budget across runs).
        self.spent_usd = spent_usd

    @classmethod
    def load(cls, run_dir: Path) -> History:
        past: dict[str, Past] = {}
        spent = 0.0
        for row in _rows(run_dir / "ledger.jsonl"):
            cost = row.get("cost_usd")
            spent += cost if isinstance(cost, int | float) else 0.0
            key = row.get("key")
            if not isinstance(key, str):
                continue
            before = past.get(key)
            done = row.get("status") == TakeStatus.DONE or (before is not None and before.done)
            past[key] = Past(
                attempts=(before.attempts if before else 0) + 1,
                done=done,
                last_status=str(row.get("status")),
                last_failure=row.get("failure_kind"),
            )
        return cls(past, spent)

    def done(self, take: Take) -> bool:
        past = self._past.get(take.key)
        return past is not None and past.done

    def done_keys(self) -> set[str]:
        return {k for k, p in self._past.items() if p.done}

    def sticky_failure(self, take: Take) -> str | None:
        """The failure kind that a plain rerun should not repeat, if the take last ended so."""
        past = self._past.get(take.key)
        if past is None or past.done or past.last_status != TakeStatus.FAILED:
            return None
        return past.last_failure if past.last_failure in STICKY_FAILURES else None

    def next_attempt(self, take: Take) -> int:
        past = self._past.get(take.key)
        return 1 if past is None else past.attempts + 1


def _end_torn_line(path: Path) -> None:
    """A crash mid-write leaves a last line without its newline: end it, so the next row stands alone."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a ledger.jsonl; a torn last line (crash mid-write) is skipped, not fatal."""
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
