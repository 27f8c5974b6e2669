"""``summary.json``: the last run's counts, spend, stop reason and paths, read from the journal.

Written at the end of every run (atomically: a reader never sees half a file) and printed by
``previz run --json``. Counts come from the journal, not from memory, so they cover the whole
manifest — takes done in earlier runs and failures that are still failures included.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.store.base import Store
from runner.store.records import Record

if TYPE_CHECKING:
    from runner.engine.tally import Summary

FILENAME = "summary.json"


def _retries(steps: dict[str, int]) -> dict[str, Any]:
    """A provider's retries in all, and by step (submit, poll, download)."""
    return {"retries": sum(steps.values()), "retries_by_step": dict(sorted(steps.items()))}


def take_counts(records: Iterable[Record]) -> dict[str, int]:
    """Takes per state, with ``succeeded`` split into in flight and paid-but-not-saved."""
    counts: Counter[str] = Counter()
    for record in records:
        counts["paid_not_saved" if record.paid_not_saved else record.state] += 1
    return dict(sorted(counts.items()))


def _providers(records: Iterable[Record]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        figures = out.setdefault(record.provider, {"takes": 0, "done": 0, "generation_s": []})
        figures["takes"] += 1
        figures["done"] += record.state == "done"
        if record.generation_s is not None:
            figures["generation_s"].append(record.generation_s)
    for figures in out.values():
        times = figures.pop("generation_s")
        figures["mean_generation_s"] = round(sum(times) / len(times), 3) if times else None
    return out


@dataclass(frozen=True)
class RunFacts:
    """What the summary says of the run besides the engine's counts and the journal."""

    manifest: Path
    name: str
    run_dir: Path
    keys: frozenset[str]  # the manifest's takes (a run directory may hold older ones too)
    budget_usd: float | None
    deadline: datetime | None


def build(facts: RunFacts, summary: Summary, journal: Store, *, started: datetime) -> dict[str, Any]:
    records = [r for k, r in journal.records().items() if k in facts.keys]
    money = journal.money()
    run_dir = facts.run_dir
    retry = run_dir / "retry.yaml"
    return {
        "manifest": str(facts.manifest),
        "manifest_path": str(facts.manifest.resolve()),
        "name": facts.name,
        "started_at": _iso(started),
        "finished_at": _iso(datetime.now(UTC)),
        "stopped": summary.stopped.value if summary.stopped else None,
        "takes": take_counts(records),
        "this_run": {
            name: getattr(summary, name)
            for name in ("done", "failed", "cancelled", "skipped", "failed_earlier", "not_started")
        }
        | {"uncertain": summary.uncertain, "held": summary.held, "resumed": summary.resumed}
        | {"retried": summary.retried},
        "providers_given_up": dict(summary.closed),
        "spend": {
            "this_run_usd": round(summary.spent_usd, 6),
            "all_runs_usd": round(money.spent_usd, 6),
            "reserved_usd": round(money.reserved_usd, 6),
            **{f"{source}_usd": round(usd, 6) for source, usd in sorted(journal.spend_by_source().items())},
            "budget_usd": facts.budget_usd,
        },
        "deadline": facts.deadline.isoformat() if facts.deadline else None,
        "selects": selects_of(journal),
        "providers": {
            name: figures | _retries(summary.retries.get(name, {}))
            for name, figures in _providers(records).items()
        },
        "paths": {
            "run_dir": str(run_dir),
            "journal": journal.location,
            "ledger_csv": str(run_dir / "ledger.csv"),
            "ledger_jsonl": str(run_dir / "ledger.jsonl"),
            "run_log": str(run_dir / "run.log"),
            "report_html": str(run_dir / "report.html"),
            "retry_yaml": str(retry) if retry.exists() else None,
        },
    }


def selects_of(journal: Store) -> dict[str, dict[str, Any]]:
    """The selects, by shot: which take, who chose it and when (``previz select``)."""
    chosen = journal.selects()
    out: dict[str, dict[str, Any]] = {}
    for key, record in journal.records().items():
        if key in chosen:
            spec = record.spec
            who, at = chosen[key]
            out[str(spec.get("shot"))] = {
                "take": spec.get("take"),
                "label": record.label,
                "seed": spec.get("seed"),
            }
            out[str(spec.get("shot"))] |= {"output": record.output, "who": who, "at": at, "key": key}
    return dict(sorted(out.items()))


def update_selects(run_dir: Path, journal: Store) -> Path | None:
    """`summary.json`'s selects as the journal has them now (after `previz select`); None if none."""
    path = run_dir / FILENAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None  # a summary previz cannot read is left for the next run to rewrite
    data["selects"] = selects_of(journal)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_summary(facts: RunFacts, summary: Summary, journal: Store, *, started: datetime) -> Path:
    """Write ``summary.json`` into the run directory (strict JSON, replaced atomically)."""
    data = build(facts, summary, journal, started=started)
    path = facts.run_dir / FILENAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")
