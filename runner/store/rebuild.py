"""A lost journal's ended takes, rebuilt from the ledger rows it had written.

Why: a journal deleted between runs (a cleanup script, a user "starting fresh" who kept the clips)
made the next run buy every AIML and Runway take again, and its ledger rows numbered from 1 once
more, so the ledger files stopped recording. But every take that reached an end left a ledger row
(``ledger.jsonl``) with its key, task id, cost, clip path, size and checksum — enough to know it is
done and paid. Each take's last row decides what it is now:

- ``done`` with its clip on disk, of the size the row names: done, charged;
- ``done`` with its clip gone or changed: paid but not saved (``succeeded``, charged) — the run
  fetches the clip again by its task id, never submits it again;
- ``failed`` or ``cancelled``: as the row says, charged (a plain rerun treats it as any earlier
  failure).

Every row is kept with its own ``seq``, so the spend stays the ledger's total and the numbering
goes on where it was. Takes that were in flight when the journal was lost have no row; they are
lost with it (their task ids were in the journal only), which is why a journal that vanishes while
a run holds it is put back from the open copy instead (see ``Journal``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The spec fields a ledger row carries (what ``Record.spec`` holds for ``status`` and reports).
_SPEC = ("shot", "take", "seed", "provider", "model", "duration_s", "ratio", "prompt", "image", "tags")


@dataclass(frozen=True)
class Rebuilt:
    """What a new store takes in: ledger rows as (seq, key, cost, row JSON) and take columns."""

    rows: list[tuple[int, str, float, str]]
    takes: list[dict[str, Any]]


def from_ledger(rows: Iterable[Mapping[str, Any]], run_dir: Path) -> Rebuilt:
    """The rows with a usable ``seq`` and ``key``, in order, and each key's take as its last row says."""
    kept: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        seq, key = row.get("seq"), row.get("key")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 and isinstance(key, str) and key:
            kept.setdefault(seq, row)
    ordered = sorted(kept.items())
    last = {str(row["key"]): row for _, row in ordered}
    takes, claimed = [], set()
    for row in last.values():
        take = _take(row, run_dir)
        if take["output"] in claimed:  # two takes naming one clip: only the first keeps the path
            take["output"] = None
        claimed.add(take["output"])
        takes.append(take)
    return Rebuilt([(seq, str(row["key"]), _cost(row), _blob(row)) for seq, row in ordered], takes)


def _cost(row: Mapping[str, Any]) -> float:
    cost = row.get("cost_usd")
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0


def _blob(row: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in row.items() if k != "seq"}, ensure_ascii=False, allow_nan=False)


def _take(row: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    status = row.get("status")
    output = row.get("output") if isinstance(row.get("output"), str) else None
    state = {"failed": "failed", "cancelled": "cancelled"}.get(str(status), "done")
    if state == "done" and not _clip_there(run_dir, output, row.get("bytes")):
        state = "succeeded"  # paid, not on disk: fetched again by task id
    shot, take = row.get("shot"), row.get("take")
    return {
        "key": row["key"],
        "label": f"{shot}#t{take:02d}" if isinstance(take, int) else str(shot),
        "provider": str(row.get("provider") or ""),
        "spec": json.dumps({k: row.get(k) for k in _SPEC}, ensure_ascii=False, allow_nan=False),
        "state": state,
        "attempt": row.get("attempts") if isinstance(row.get("attempts"), int) else 1,
        "handle": row.get("task_id"),
        "submitted_at": row.get("submitted_at"),
        "finished_at": row.get("finished_at"),
        "generation_s": row.get("generation_s"),
        "failure_kind": row.get("failure_kind"),
        "failure_message": row.get("failure_message"),
        "cost_usd": _cost(row),
        "cost_source": row.get("cost_source"),
        "charged": 1,
        "output": output,
        "bytes": row.get("bytes") if state == "done" else None,
        "sha256": row.get("sha256") if state == "done" else None,
        "flags": "rebuilt",
    }


def _clip_there(run_dir: Path, output: str | None, size: object) -> bool:
    if output is None:
        return False
    try:
        return (run_dir / output).stat().st_size == size
    except OSError:
        return False
