"""``report.html``: the morning's contact sheet — every take's clip playing in place, by shot.

One self-contained file (inline CSS and JS, no CDN) that works from the file system: clips are
linked relative to the run directory, so the folder can be copied or zipped whole. Rendered with
Jinja2 with autoescaping on — prompts are user text, and a prompt holding ``<script>`` must show
as text. Written at the end of every run and by ``previz report``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from runner.reports.report import Source, last_rows, totals

FILENAME = "report.html"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("runner.reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


class _Card:
    """A take as the template sees it: its ledger row's columns (``t.status``…) and, beside them,
    ``clip`` (the playable file, or None) and ``tags_list`` — the row itself is not copied."""

    __slots__ = ("_row", "clip", "tags_list")

    def __init__(self, row: Mapping[str, Any], run_dir: Path) -> None:
        self._row = row
        output = row.get("output")
        playable = output and row.get("status") == "done" and (run_dir / output).exists()
        self.clip = output if playable else None
        self.tags_list = [t for t in str(row.get("tags") or "").split(";") if t]

    def __getitem__(self, name: str) -> Any:
        return self._row[name]

    def get(self, name: str) -> Any:
        return self._row.get(name)


def render(source: Source, *, name: str, budget_usd: float | None = None) -> str:
    """The contact sheet of one run directory: its takes as they stand now, grouped by shot."""
    return "".join(_pieces(source, name=name, budget_usd=budget_usd))


def _pieces(source: Source, *, name: str, budget_usd: float | None) -> Iterator[str]:
    """:func:`render` piece by piece (10,000 takes make millions of pieces: never all at once)."""
    takes = [_Card(row, source.run_dir) for row in last_rows([source])]
    shots: dict[str, list[_Card]] = {}
    for take in sorted(takes, key=lambda t: (str(t.get("shot")), int(t.get("take") or 0))):
        shots.setdefault(str(take.get("shot")), []).append(take)
    report = totals([source])
    statuses = sorted({str(t.get("status")) for t in takes})
    tags = sorted({tag for t in takes for tag in t.tags_list})
    return _ENV.get_template("report.html.j2").generate(
        name=name,
        shots=shots,
        total=report["total"],
        by_status=report["status"],
        budget_usd=budget_usd,
        statuses=statuses,
        tags=tags,
        made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report_html(source: Source, *, name: str, budget_usd: float | None = None) -> Path:
    """Write ``report.html`` into the run directory, replaced atomically."""
    path = source.run_dir / FILENAME
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(_pieces(source, name=name, budget_usd=budget_usd))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half page behind
        raise
    return path


def write_all(sources: Sequence[Source]) -> list[Path]:
    return [write_report_html(s, name=s.run_dir.name) for s in sources]
