"""``previz report``: what one or many nights cost and made, from their ledgers.

Money is summed over every ledger row — each row is one attempt's end and carries what that
attempt was charged, so the sums are the bill (a clip fetched later carries 0, flag
``paid_earlier``). Takes are counted by their *last* row per run directory and key, so a take that
failed and then succeeded counts once, as done. Every grouping's cost column adds up to the
total, in every format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InputError
from runner.reports.ledger import iter_rows

GROUPS = ("provider", "model", "shot", "tag", "day", "status")
#: The studio's bill (``report --store``): every manifest and machine on one store.
STUDIO_GROUPS = ("manifest", "account", "host", "day", "tag")

#: The ledger columns the reports read (the totals and the contact sheet). A loaded row keeps only
#: these: a 10,000-take ledger held whole, run ids, hashes and sizes included, is tens of MB.
READ = (
    "key",
    "shot",
    "take",
    "seed",
    "provider",
    "model",
    "status",
    "failure_kind",
    "failure_message",
    "duration_s",
    "ratio",
    "prompt",
    "tags",
    "cost_usd",
    "cost_source",
    "finished_at",
    "generation_s",
    "task_id",
    "output",
    "manifest",
    "host",
)
#: Columns whose few values repeat on every row: one string object each, shared by the rows.
_SHARED = ("provider", "model", "status", "failure_kind", "ratio", "tags", "cost_source", "manifest", "host")


@dataclass(frozen=True)
class Source:
    """One ledger and the run directory it belongs to; each row holds the :data:`READ` columns it has."""

    run_dir: Path
    rows: tuple[dict[str, Any], ...]
    skipped: int = 0  # ledger lines that are not rows previz writes (not an object, mistyped)
    place: str = ""  # team store: "host:run_dir" of the machine whose ledger holds these rows

    @property
    def name(self) -> str:
        return self.place or str(self.run_dir)


def load(paths: Iterable[Path]) -> list[Source]:
    """Run directories or ledger files (``ledger.jsonl`` preferred; ``ledger.csv`` read too)."""
    sources = []
    for path in paths:
        ledger = _ledger_of(path)
        bad = [0]
        rows = iter_rows(ledger, bad) if ledger.suffix == ".jsonl" else _csv_rows(ledger, bad)
        kept = []
        for row in rows:
            slim = _slim(row)
            if _usable(slim):
                kept.append(slim)
            else:
                bad[0] += 1
        sources.append(Source(ledger.parent, tuple(kept), bad[0]))
    return sources


#: Columns that must be real numbers, and those that must be whole ones (CSV gives digits).
_NUMBERS = frozenset({"cost_usd", "generation_s"})
_WHOLE = frozenset({"take", "seed", "duration_s"})


def _usable(row: Mapping[str, Any]) -> bool:
    """Whether every column the reports read has the type previz writes (None: absent)."""
    return all(value is None or _fits(name, value) for name, value in row.items())


def _fits(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if name in _NUMBERS:
        return isinstance(value, int | float) and math.isfinite(value)
    if name in _WHOLE:
        return isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    return isinstance(value, str)


def slim(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row cut to the columns the reports read (:data:`READ`), repeated strings shared."""
    return _slim(row)


def _slim(row: Mapping[str, Any]) -> dict[str, Any]:
    kept = {name: row[name] for name in READ if name in row}
    for name in _SHARED:
        value = kept.get(name)
        if type(value) is str:
            kept[name] = sys.intern(value)
    return kept


def _ledger_of(path: Path) -> Path:
    if path.is_dir():
        for name in ("ledger.jsonl", "ledger.csv"):
            if (path / name).is_file():
                return path / name
        raise InputError(f"{path}: no ledger.jsonl or ledger.csv here; give a run directory or a ledger")
    if path.is_file() and path.suffix in (".jsonl", ".csv"):
        return path
    raise InputError(f"{path}: not a run directory or a ledger file (.jsonl, .csv)")


def _csv_rows(path: Path, bad: list[int]) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                for name in _NUMBERS:
                    row[name] = float(row[name]) if row.get(name) else None
            except ValueError:
                bad[0] += 1
                continue
            yield row


def last_rows(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """Each take's last row (per run directory and key): where the take stands now."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for source in sources:
        for row in source.rows:
            latest[(source.name, str(row.get("key")))] = row
    return list(latest.values())


@dataclass
class Bucket:
    cost_usd: float = 0.0
    reported_usd: float = 0.0
    estimated_usd: float = 0.0
    takes: int = 0
    done: int = 0
    times: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        times = sorted(self.times)
        return {
            "cost_usd": round(self.cost_usd, 6),
            "reported_usd": round(self.reported_usd, 6),
            "estimated_usd": round(self.estimated_usd, 6),
            "takes": self.takes,
            "done": self.done,
            "mean_generation_s": round(statistics.fmean(times), 3) if times else None,
            "p90_generation_s": round(_p90(times), 3) if times else None,
        }


def _p90(times: list[float]) -> float:
    return times[min(len(times) - 1, int(0.9 * len(times)))]


def _keys(row: Mapping[str, Any], group: str) -> list[str]:
    if group == "tag":
        return [t for t in str(row.get("tags") or "").split(";") if t] or ["(no tag)"]
    if group == "day":
        return [str(row.get("finished_at") or "")[:10] or "(unknown)"]
    if group == "host":
        return [str(row.get("host") or "(unknown)")]
    return [str(row.get(group) or "")]


def totals(sources: Sequence[Source], groups: Sequence[str] = GROUPS) -> dict[str, Any]:
    """The whole report as data: overall and per grouping (a tag's rows count under each tag)."""
    buckets: dict[str, dict[str, Bucket]] = {g: defaultdict(Bucket) for g in groups}
    overall = Bucket()
    for source in sources:
        for row in source.rows:
            for bucket in _buckets(buckets, overall, row):
                _charge(bucket, row)
    for row in last_rows(sources):
        for bucket in _buckets(buckets, overall, row):
            _count(bucket, row)
    return {
        "runs": [s.name for s in sources],
        "total": overall.to_json(),
        **{g: {k: b.to_json() for k, b in sorted(buckets[g].items())} for g in groups},
    }


def _buckets(
    groups: Mapping[str, Mapping[str, Bucket]], overall: Bucket, row: Mapping[str, Any]
) -> list[Bucket]:
    found = [overall]
    for group, buckets in groups.items():
        found += [buckets[key] for key in _keys(row, group)]
    return found


def _charge(bucket: Bucket, row: Mapping[str, Any]) -> None:
    cost = float(row.get("cost_usd") or 0.0)
    bucket.cost_usd += cost
    if row.get("cost_source") == "reported":
        bucket.reported_usd += cost
    else:
        bucket.estimated_usd += cost


def _count(bucket: Bucket, row: Mapping[str, Any]) -> None:
    bucket.takes += 1
    bucket.done += row.get("status") == "done"
    if isinstance(row.get("generation_s"), int | float):
        bucket.times.append(float(row["generation_s"]))


# --- formats ---------------------------------------------------------------------------------------

COLUMNS = (
    "cost_usd",
    "reported_usd",
    "estimated_usd",
    "takes",
    "done",
    "mean_generation_s",
    "p90_generation_s",
)


def as_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, allow_nan=False)


def as_csv(report: Mapping[str, Any], groups: Sequence[str] = GROUPS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("group", "key", *COLUMNS))
    writer.writerow(("total", "", *(_cell(report["total"][c]) for c in COLUMNS)))
    for group in groups:
        for key, figures in report[group].items():
            writer.writerow((group, key, *(_cell(figures[c]) for c in COLUMNS)))
    return out.getvalue()


def as_markdown(report: Mapping[str, Any], groups: Sequence[str] = GROUPS) -> str:
    lines = [f"# previz report ({len(report['runs'])} runs)", ""]
    for group in ("total", *groups):
        rows = {"all": report["total"]} if group == "total" else report[group]
        lines += [f"## by {group}" if group != "total" else "## total", ""]
        lines += ["| " + " | ".join((group, *COLUMNS)) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
        lines += ["| " + " | ".join((key, *(_cell(f[c]) for c in COLUMNS))) + " |" for key, f in rows.items()]
        lines.append("")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
