"""The cost/seed ledger: one row per attempt that reached an end, appended and never rewritten.

``ledger.csv`` is for people and spreadsheets, ``ledger.jsonl`` for scripts. Both are projections
of the journal's ``rows`` table (:mod:`runner.store.sqlite`), where a row is committed in the same
transaction as the take's end: :class:`LedgerFiles` appends whatever rows a file does not hold yet
(by ``seq``), so a kill between the commit and the append loses nothing — the next run writes it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.engine.records import COLUMNS

if TYPE_CHECKING:
    from runner.store.base import Store

#: Headers an older previz wrote (before ``host``): such a ``ledger.csv`` is read and appended to
#: in its own layout — the contract is "appended, never rewritten" — while ``ledger.jsonl`` and a
#: file rebuilt from the journal carry every column.
OLDER_HEADERS = (tuple(c for c in COLUMNS if c != "host"),)
HEADERS = (COLUMNS, *OLDER_HEADERS)


class LedgerFiles:
    """``ledger.csv`` and ``ledger.jsonl``, kept up to date with the journal's rows.

    The journal is the truth: at the first :meth:`sync` of a run each file is checked against
    it, and one that is torn (a kill or a full disk cut a row, maybe inside a quoted field) or
    short (a row missing before the last) is rewritten whole from the journal's rows — written
    beside it and renamed over it, so a crash mid-rewrite leaves the old file. A file holding rows
    this journal does not know is never rewritten (it would lose them): rows are appended to it.
    """

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self._paths = (run_dir / "ledger.csv", run_dir / "ledger.jsonl")
        self._csv_seq = self._jsonl_seq = 0
        self._csv: TextIO | None = None
        self._jsonl: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None
        self.failed: str | None = None
        self.rewritten: list[str] = []  # the files the first sync rewrote from the journal

    def sync(self, journal: Store) -> int:
        """Append the journal's rows that either file lacks. Returns rows appended.

        Written through to the OS at once (a killed process loses nothing), fsynced only at
        :meth:`close`: the journal is the durable record, committed with ``synchronous=FULL``
        before this runs, and a run after a power cut appends whatever rows the files lost.

        A write that fails (a full disk) stops the files for this run, not the run: the journal
        holds every row, and the next run rewrites or appends what is missing. ``failed`` says why.
        """
        if self.failed:
            return 0
        try:
            if self._csv is None:
                self._open(journal)
            return self._append(journal)
        except OSError as exc:
            self.failed = f"cannot write the ledger files ({exc.strerror or exc}); the journal keeps the rows"
            return 0

    def _open(self, journal: Store) -> None:
        """Check both files against the journal (rewriting a torn or short one), then open them."""
        known = journal.row_seqs()
        csv_path, jsonl_path = self._paths
        self._csv_seq = self._checked(csv_path, _csv_seqs(csv_path), known, journal)
        self._jsonl_seq = self._checked(jsonl_path, _jsonl_seqs(jsonl_path), known, journal)
        header = _csv_header(csv_path)
        self._csv = csv_path.open("a", newline="", encoding="utf-8")
        self._jsonl = jsonl_path.open("a", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=header or COLUMNS, extrasaction="ignore")
        if header is None:
            self._writer.writeheader()

    def _checked(self, path: Path, seqs: list[int] | None, known: list[int], journal: Store) -> int:
        """The last row ``path`` holds once it can be appended to; a torn or short file is rewritten."""
        if seqs is not None and seqs == known[: len(seqs)]:
            return seqs[-1] if seqs else 0
        if seqs is not None and not set(seqs) <= set(known):
            _end_torn_line(path)  # rows of another journal: keep them, append after them
            return max(seqs)
        if seqs is None and not path.exists():
            return 0
        readable = (
            _seq_of(r.get("seq")) for r in (_csv_rows(path) if path.suffix == ".csv" else _rows(path, [0]))
        )
        if not {seq for seq in readable if seq is not None} <= set(known):
            _keep_aside(path)  # torn, and holding rows of another journal: the rewrite must not lose them
        _rewrite(path, journal)
        self.rewritten.append(path.name)
        return known[-1] if known else 0

    def _append(self, journal: Store) -> int:
        assert self._csv is not None and self._jsonl is not None and self._writer is not None
        written = 0
        for seq, row in journal.rows_after(min(self._csv_seq, self._jsonl_seq)):
            full = _full(seq, row)
            if seq > self._jsonl_seq:
                self._jsonl.write(_jsonl_line(full))
                self._jsonl_seq = seq
                written += 1
            if seq > self._csv_seq:
                self._writer.writerow(_csv_cells(full))
                self._csv_seq = seq
        if written:
            for fh in (self._csv, self._jsonl):
                fh.flush()
        return written

    def close(self) -> None:
        for fh in (self._csv, self._jsonl):
            if fh is None:
                continue
            try:
                try:
                    if not fh.closed:
                        fh.flush()
                        os.fsync(fh.fileno())
                finally:
                    fh.close()
            except OSError as exc:  # buffered bytes that a full disk refused: the next run rewrites them
                self.failed = self.failed or f"cannot write the ledger files ({exc.strerror or exc})"


def _full(seq: int, row: dict[str, Any]) -> dict[str, Any]:
    return {**{c: row.get(c) for c in COLUMNS}, **row, "seq": seq}


def _jsonl_line(full: dict[str, Any]) -> str:
    return json.dumps(full, ensure_ascii=False, allow_nan=False) + "\n"


def _csv_cells(full: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if v is None else v for k, v in full.items()}


def _rewrite(path: Path, journal: Store) -> None:
    """``path`` made anew from every row of the journal: written beside it, fsynced, renamed over it."""
    temp = path.with_name(path.name + ".tmp")
    rows = journal.rows_after(0)
    with temp.open("w", newline="", encoding="utf-8") as fh:
        if path.suffix == ".csv":
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(_csv_cells(_full(seq, row)) for seq, row in rows)
        else:
            fh.writelines(_jsonl_line(_full(seq, row)) for seq, row in rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _readable_seqs(path: Path) -> set[int]:
    """The ``seq`` of every row of a torn file that can still be read."""
    rows = _csv_rows(path) if path.suffix == ".csv" else _rows(path, [0])
    try:
        return {seq for seq in (_seq_of(r.get("seq")) for r in rows) if seq is not None}
    except csv.Error:
        return set()


def _keep_aside(path: Path) -> None:
    """A copy of ``path`` under the first free name ``<name>.old``, ``<name>.old2``…"""
    n = 1
    while (aside := path.with_name(f"{path.name}.old{n if n > 1 else ''}")).exists():
        n += 1
    shutil.copyfile(path, aside)


def _seq_of(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _csv_header(path: Path) -> tuple[str, ...] | None:
    """The header of a ``ledger.csv`` that rows may be appended under (one of :data:`HEADERS`);
    None for an absent or empty file, which gets today's header."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="", encoding="utf-8") as fh:
        header = tuple(next(csv.reader(fh), ()))
    return header if header in HEADERS else COLUMNS


def _csv_seqs(path: Path) -> list[int] | None:
    """The ``seq`` of each row of ``ledger.csv`` in file order; None when a row is torn (a cell
    count other than the header's, a quoted field left open, no ``seq``), the header is none
    previz writes, or the file is absent."""
    if not path.exists():
        return None
    if path.stat().st_size == 0:
        return []
    seqs: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None or tuple(header) not in HEADERS:
                return None
            for cells in reader:
                seq = _seq_of(cells[-1]) if len(cells) == len(header) else None
                if seq is None:
                    return None
                seqs.append(seq)
    except (csv.Error, UnicodeDecodeError):
        return None
    return seqs


def _jsonl_seqs(path: Path) -> list[int] | None:
    """The ``seq`` of each line of ``ledger.jsonl``; None when a line is torn or the file is absent."""
    if not path.exists():
        return None
    seqs: list[int] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for line in fh:
                row = json.loads(line) if line.endswith("\n") else None
                seq = _seq_of(row.get("seq")) if isinstance(row, dict) else None
                if seq is None:
                    return None
                seqs.append(seq)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return seqs


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


def iter_rows(path: Path, bad: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a ``ledger.jsonl``, one at a time; a torn line (crash mid-write) or one that is not
    an object is skipped, not fatal, and counted in ``bad[0]`` when given."""
    return _rows(path, bad if bad is not None else [0])


def _rows(path: Path, bad: list[int]) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                yield row
            else:
                bad[0] += 1
