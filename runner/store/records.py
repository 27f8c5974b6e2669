"""The store's values: a take's :class:`Record`, the budget's :class:`Money`, a queued call.

Shared by every backend and by their readers (engine, reports, commands), so none of them needs
to know which backend wrote a record.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The takes table's columns in Record's field order: every backend reads ``SELECT {COLUMNS}`` and
#: builds the record from the row as read (:func:`record_of`).
COLUMNS = (
    "key, label, provider, spec, state, attempt, submits, handle, submitted_at, finished_at,"
    " generation_s, failure_kind, failure_message, cost_usd, cost_source, reserved_usd, charged,"
    " output, bytes, sha256, flags"
)
_PROVIDER, _STATE, _CHARGED, _FLAGS = 2, 4, 16, 20


@dataclass(frozen=True, slots=True)
class Record:
    """One take's row: what the journal knows of it. Field meanings follow the table's columns.

    Slotted, with the spec kept as the column's JSON text until asked for: a run reads the records
    of all its takes at once (10,000 of them at 3 KB each, as a dict-backed record with a parsed spec).
    """

    key: str
    label: str
    provider: str
    spec_json: str  # the take's fields as the ledger shows them (shot, seed, prompt…): see ``spec``
    state: str
    attempt: int  # deliberate attempts started; each is a new task at the provider
    submits: int  # HTTP submits sent for the current attempt
    handle: str | None  # task id (AIML, Runway) or taskUUID (Runware)
    submitted_at: str | None
    finished_at: str | None
    generation_s: float | None
    failure_kind: str | None
    failure_message: str | None
    cost_usd: float | None
    cost_source: str | None
    reserved_usd: float
    charged: bool  # the current attempt's cost is in the ledger already
    output: str | None  # clip path relative to the run directory, claimed when the take is planned
    bytes: int | None
    sha256: str | None
    flags: tuple[str, ...]

    @property
    def spec(self) -> Mapping[str, Any]:
        """The take's fields as the ledger shows them (shot, seed, prompt…), parsed on each call."""
        parsed: Mapping[str, Any] = json.loads(self.spec_json)
        return parsed

    @property
    def paid_not_saved(self) -> bool:
        return self.state == "succeeded" and self.charged


@dataclass(frozen=True)
class DayMoney:
    """An account's spend today (team mode): what its daily cap is checked against."""

    account: str  # provider:fingerprint (never the key)
    cap_usd: float  # ``previz accounts set … --daily-usd``
    spent_usd: float  # charged today, every manifest and machine on the store
    reserved_usd: float  # held today for takes in flight
    day: str  # the store's UTC day, ISO 8601


@dataclass(frozen=True)
class Money:
    spent_usd: float  # charged: the ledger's total
    reserved_usd: float  # held for takes in flight
    day: DayMoney | None = None  # the take's account under a daily cap (team mode), else None


@dataclass
class Pending:
    """One store call waiting for the next group commit (see ``AsyncJournal``)."""

    op: Callable[[], Any]
    rows: bool = False  # writes ledger rows: the files follow the commit
    done: bool = False
    result: Any = None
    error: BaseException | None = None


def record_of(row: Sequence[Any]) -> Record:
    """A record from a row read as ``SELECT {COLUMNS}``; provider and state share one string each."""
    fields = list(row)
    fields[_PROVIDER], fields[_STATE] = sys.intern(fields[_PROVIDER]), sys.intern(fields[_STATE])
    fields[_CHARGED] = bool(fields[_CHARGED])
    fields[_FLAGS] = tuple(f for f in fields[_FLAGS].split(";") if f)
    return Record(*fields)


def free_name(wanted: str, claimed: set[str], run_dir: Path) -> str:
    """``wanted``, or ``…_v2.mp4``, ``_v3``… — the first clip path no take claims and no file holds."""
    stem, dot, ext = wanted.rpartition(".")
    stem = re.sub(r"_v\d+$", "", stem)
    candidate, n = wanted, 1
    while candidate in claimed or (run_dir / candidate).exists():
        n += 1
        candidate = f"{stem}_v{n}{dot}{ext}"
    return candidate
