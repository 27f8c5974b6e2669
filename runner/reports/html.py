"""``report.html``: the morning's contact sheet — every take's clip playing in place, by shot.

The review (DESIGN §8): each shot shows its plate (first frame, inline) beside its takes and what
the shot cost; each done take can be circled (a toggle, or ``s``; arrows move between takes, space
plays), the circles kept in the browser's localStorage under the run's id (the run directory's
name and path), one per shot like the journal's selects; "download selects" saves them as the file
``previz select --from`` reads. Selects already in the journal are marked and circled on first
open.

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

from runner.manifest.document import Manifest
from runner.reports.plates import Plate, plates
from runner.reports.report import Source, last_rows, totals
from runner.store.base import JournalError
from runner.store.factory import open_store
from runner.store.sqlite import FILENAME as JOURNAL

FILENAME = "report.html"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("runner.reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


class _Card:
    """A take as the template sees it: its ledger row's columns (``t.status``…) and, beside them,
    ``clip`` (the playable file, or None) and ``tags_list`` — the row itself is not copied."""

    __slots__ = ("_row", "clip", "item", "pickable", "selected", "tags_list")

    def __init__(self, row: Mapping[str, Any], run_dir: Path, selects: Mapping[str, tuple[str, str]]) -> None:
        self._row = row
        output = row.get("output")
        playable = output and row.get("status") == "done" and (run_dir / output).exists()
        self.clip = output if playable else None
        self.tags_list = [t for t in str(row.get("tags") or "").split(";") if t]
        self.item = f"{row.get('shot')}:{int(row.get('take') or 0)}"
        chosen = selects.get(str(row.get("key")))
        self.selected = chosen  # (who, when) when the journal holds this take as its shot's select
        self.pickable = self.clip is not None

    def __getitem__(self, name: str) -> Any:
        return self._row[name]

    def get(self, name: str) -> Any:
        return self._row.get(name)


def render(
    source: Source, *, name: str, budget_usd: float | None = None, manifest: Manifest | None = None
) -> str:
    """The contact sheet of one run directory: its takes as they stand now, grouped by shot."""
    return "".join(_pieces(source, name=name, budget_usd=budget_usd, manifest=manifest))


def _selects(run_dir: Path) -> dict[str, tuple[str, str]]:
    """The journal's selects (read-only), or none when there is no journal to read."""
    if not (run_dir / JOURNAL).is_file():
        return {}
    try:
        journal = open_store(run_dir, readonly=True)
    except JournalError:  # the sheet is still worth having; status and run say what is wrong
        return {}
    try:
        return journal.selects()
    finally:
        journal.close()


def _one_per_number(cards: list[_Card]) -> None:
    """Of two takes with one shot and take number (a shot edited since), only the one ``previz
    select`` would take — done, the latest to finish — can be circled; the other keeps its clip."""
    best: dict[str, _Card] = {}
    for card in cards:
        rank = (card.get("status") == "done", str(card.get("finished_at") or ""))
        held = best.get(card.item)
        if held is None or rank >= (held.get("status") == "done", str(held.get("finished_at") or "")):
            best[card.item] = card
    for card in cards:
        card.pickable = card.clip is not None and best[card.item] is card


def _pieces(
    source: Source, *, name: str, budget_usd: float | None, manifest: Manifest | None
) -> Iterator[str]:
    """:func:`render` piece by piece (10,000 takes make millions of pieces: never all at once)."""
    selects = _selects(source.run_dir)
    takes = [_Card(row, source.run_dir, selects) for row in last_rows([source])]
    _one_per_number(takes)
    order = {s.id: n for n, s in enumerate(manifest.shots)} if manifest else {}
    shots: dict[str, list[_Card]] = {}
    for take in sorted(
        takes,
        key=lambda t: (
            order.get(str(t.get("shot")), len(order)),
            str(t.get("shot")),
            int(t.get("take") or 0),
        ),
    ):
        shots.setdefault(str(take.get("shot")), []).append(take)
    report = totals([source])
    shown: dict[str, Plate] = plates(manifest.shots) if manifest else {}
    statuses = sorted({str(t.get("status")) for t in takes})
    tags = sorted({tag for t in takes for tag in t.tags_list})
    return _ENV.get_template("report.html.j2").generate(
        name=name,
        shots=shots,
        plates=shown,
        spend=report["shot"],
        run_id=f"{source.run_dir.name}@{source.run_dir.resolve()}",
        total=report["total"],
        by_status=report["status"],
        budget_usd=budget_usd,
        statuses=statuses,
        tags=tags,
        made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report_html(
    source: Source, *, name: str, budget_usd: float | None = None, manifest: Manifest | None = None
) -> Path:
    """Write ``report.html`` into the run directory, replaced atomically."""
    path = source.run_dir / FILENAME
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(_pieces(source, name=name, budget_usd=budget_usd, manifest=manifest))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half page behind
        raise
    return path


def write_all(sources: Sequence[Source], manifests: Sequence[Manifest | None] = ()) -> list[Path]:
    """``report.html`` for each source (with its manifest, when one was found: plates, shot order)."""
    found = list(manifests) + [None] * (len(sources) - len(manifests))
    return [
        write_report_html(s, name=s.run_dir.name, budget_usd=m.budget_usd if m else None, manifest=m)
        for s, m in zip(sources, found, strict=True)
    ]
