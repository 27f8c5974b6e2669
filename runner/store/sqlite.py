"""``journal.sqlite``: the durable state of every take, and the only writer of it (DESIGN §4).

Why it exists: a kill, a full disk or a double Ctrl-C must never make a provider bill twice or the
budget break. So every fact that money depends on is committed here *before* the step that relies
on it — ``submitting`` (with Runware's taskUUID) before the POST, the task id the moment the answer
arrives — and a rerun starts from these rows, not from memory.

A take's row moves ``planned → reserved → submitting → submitted → succeeded → done``, or ends
``failed`` or ``cancelled``. ``submitting`` is written right before each POST, so a take found in it
after a crash is the one case that may or may not have reached the provider. ``succeeded`` with a
ledger row already written means "paid but not saved": the clip could not be fetched or written,
and the next run fetches it by task id.

Money: a take's estimate is *reserved* (``reserved_usd``) atomically with the budget check when it
goes ``reserved``; when the attempt's cost is known it is *charged* — written as a ledger row in
the ``rows`` table in the same transaction that frees the reservation. ``spent`` is the sum of the
rows, so the ledger and the budget can never disagree, across runs and crashes. ``ledger.csv`` and
``ledger.jsonl`` are projections of ``rows`` (see :mod:`runner.reports.ledger`).

Every commit is ``synchronous=FULL`` in WAL mode: a commit is one fsync of the WAL, cheap next to
a provider round trip, and it keeps the rule simple — what returned is on disk. Calls from the event
loop go through :class:`AsyncJournal`, one worker thread at a time, so SQLite never blocks the loop.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from runner.errors import LockHeldError
from runner.store import filewatch, schema
from runner.store.base import JournalError, JournalWriteError
from runner.store.calls import SingleCalls
from runner.store.owner import LEASE_S, Owner, held_message, is_gone
from runner.store.rebuild import from_ledger
from runner.store.records import COLUMNS, Money, Pending, Record, free_name, record_of
from runner.store.schema import FILENAME, SCHEMA_VERSION, STATES

__all__ = [
    "FILENAME",
    "IN_FLIGHT",
    "SCHEMA_VERSION",
    "STATES",
    "Journal",
    "JournalError",
    "JournalWriteError",
]

#: States in which a take may be billed by the provider without a ledger row yet.
IN_FLIGHT = frozenset({"submitting", "submitted", "succeeded"})
#: States a take's row ends in (for this night: a rerun may still retry some failures).
ENDED = ("done", "failed", "cancelled")

R = TypeVar("R")


class Journal(SingleCalls):
    """Synchronous access to one run directory's journal. Thread-safe; one writer (the owner row)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool = False) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path
        self._identity = None if readonly else schema.identity(path)
        self._stopped: str | None = None  # why every write is refused from now on

    @classmethod
    def open(cls, run_dir: Path, *, readonly: bool = False) -> Journal:
        """Open (or, unless ``readonly``, create) the journal; JournalError if it cannot be trusted."""
        path = run_dir / FILENAME
        try:
            conn = schema.open_checked(path, readonly=readonly)
        except sqlite3.OperationalError as exc:  # disk full, no permission, a folder in the way
            raise JournalError(f"{path}: cannot open the journal ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path}: not a usable journal ({exc}); move it aside to start over") from exc
        except OSError as exc:
            raise JournalError(f"{path}: cannot create the journal ({exc.strerror or exc})") from exc
        return cls(conn, path, readonly=readonly)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._still_ours()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalWriteError(
                    f"{self.path}: cannot write the journal ({exc}); nothing more is sent"
                ) from exc

    # --- the file under the journal -----------------------------------------------------------

    def _still_ours(self) -> None:
        """Before each write: the file at our path is still the one we opened, and we still own it.

        A journal deleted under a run would take every task id in flight with it (the next run
        would buy them again): it is put back from this open copy, and the run stops. A file put
        in its place is left alone; this run's journal is kept beside it. Either way nothing more
        is sent: which journal is true is the user's call.
        """
        if self._stopped is not None:
            raise JournalWriteError(self._stopped)
        try:
            now = schema.identity(self.path)
        except FileNotFoundError:
            self._stopped = self._put_back()
            raise JournalWriteError(self._stopped) from None
        except OSError:
            return  # cannot look (a flaky mount): the write itself will say if it fails
        if now != self._identity:
            self._stopped = self._keep_aside()
            raise JournalWriteError(self._stopped)

    def _put_back(self) -> str:
        reconnect = partial(schema.connect, self.path, readonly=False)
        message, conn = filewatch.put_back(self._conn, self.path, reconnect)
        if conn is not None:
            self._conn = conn
            self._identity = schema.identity(self.path)
        return message

    def _keep_aside(self) -> str:
        return filewatch.keep_aside(self._conn, self.path)

    # --- one writer (runner.store.owner) ------------------------------------------------------

    def claim(self, me: Owner) -> Owner | None:
        with self._tx() as conn:
            row = conn.execute("SELECT token, pid, host, started, beat FROM owner WHERE id = 1").fetchone()
            held = None if row is None else Owner(*row)
            if held is not None and held.token != me.token and not is_gone(held, me.beat, me.host):
                raise LockHeldError(held_message(held, me.beat, str(self.run_dir)))
            conn.execute(
                "INSERT OR REPLACE INTO owner (id, token, pid, host, started, beat)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                (me.token, me.pid, me.host, me.started, me.beat),
            )
        return held

    def beat(self, token: str, now: float) -> bool:
        with self._tx() as conn:
            found = conn.execute("UPDATE owner SET beat = ? WHERE id = 1 AND token = ?", (now, token))
            if found.rowcount == 1:
                return True
            holder = conn.execute("SELECT token, pid, host, started, beat FROM owner WHERE id = 1").fetchone()
        taken = "" if holder is None else f" by {Owner(*holder).describe(now)}"
        self._stopped = f"{self.path}: this run was taken over{taken}; nothing more is sent by this one"
        return False

    def disown(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM owner WHERE id = 1 AND token = ?", (token,))

    def holder(self) -> Owner | None:
        """The run writing this journal now, if any run holds it and is not provably gone."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT token, pid, host, started, beat FROM owner").fetchone()
            except sqlite3.OperationalError:  # a journal older than the owner row, read-only
                return None
        if row is None:
            return None
        held = Owner(*row)
        return None if is_gone(held, time.time(), socket.gethostname()) else held

    # --- leases (team mode's; one run writes a journal, so every take not ended is its own) ------

    def op_lease(self, key: str, run: str, seconds: float) -> Record | None:
        row = self._conn.execute(f"SELECT {COLUMNS} FROM takes WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        record = record_of(row)
        return None if record.state in ENDED else record

    def renew(self, run: str, seconds: float) -> int:
        return 0

    def lapsed(self, *, besides: str | None = None, seconds: float = LEASE_S) -> list[Record]:
        return []  # no other run: nothing is ever left by one

    def unended(self, besides: Collection[str] = ()) -> int:
        with self._lock:
            marks = ", ".join("?" * len(ENDED))
            found = self._conn.execute(f"SELECT key FROM takes WHERE state NOT IN ({marks})", tuple(ENDED))
            return sum(1 for (key,) in found if key not in besides)

    # --- reading ------------------------------------------------------------------------------

    def records(self, *states: str) -> dict[str, Record]:
        """Every take's record by key (only those in ``states``, when given)."""
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        with self._lock:
            found = self._conn.execute(f"SELECT {COLUMNS} FROM takes{where}", states)
            return {r[0]: record_of(r) for r in found}

    def get(self, key: str) -> Record:
        with self._lock:
            row = self._conn.execute(f"SELECT {COLUMNS} FROM takes WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return record_of(row)

    def money(self) -> Money:
        with self._lock:
            return self._money(self._conn)

    @staticmethod
    def _money(conn: sqlite3.Connection) -> Money:
        """Spent and held, rounded to a nanodollar (the trigger-kept sums drift by float ulps)."""
        try:
            spent, held = conn.execute("SELECT spent, held FROM money WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # a version-1 journal opened read-only: sum the tables
            spent = conn.execute("SELECT coalesce(sum(cost_usd), 0) FROM rows").fetchone()[0]
            held = conn.execute("SELECT coalesce(sum(reserved_usd), 0) FROM takes").fetchone()[0]
        return Money(round(float(spent), 9), round(float(held), 9))

    def spend_by_source(self) -> dict[str, float]:
        """What the ledger's rows charged, by ``cost_source`` (reported by the provider, estimated)."""
        with self._lock:
            found = self._conn.execute(
                "SELECT json_extract(row, '$.cost_source'), coalesce(sum(cost_usd), 0) FROM rows GROUP BY 1"
            ).fetchall()
        return {str(source or "estimated"): float(total) for source, total in found}

    def row_seqs(self) -> list[int]:
        """The sequence number of every ledger row, in order (what the ledger files must hold)."""
        with self._lock:
            return [s for (s,) in self._conn.execute("SELECT seq FROM rows ORDER BY seq").fetchall()]

    def rows_after(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        """Ledger rows with a sequence number above ``seq``, in order."""
        with self._lock:
            found = self._conn.execute("SELECT seq, row FROM rows WHERE seq > ? ORDER BY seq", (seq,))
            return [(s, json.loads(r)) for s, r in found.fetchall()]

    def selects(self) -> dict[str, tuple[str, str]]:
        """The selects by key: (who, when); none in an older journal read without upgrading it."""
        with self._lock:
            try:
                found = self._conn.execute("SELECT key, who, at FROM selects ORDER BY at, key").fetchall()
            except sqlite3.OperationalError:  # a journal older than version 4, opened read-only
                return {}
        return {key: (who, at) for key, who, at in found}

    # --- writing ------------------------------------------------------------------------------

    def select(self, keys: Iterable[str], who: str, at: str, *, instead_of: Iterable[str] = ()) -> None:
        """Record selects, forgetting ``instead_of`` in the same transaction; KeyError for an unknown take."""
        chosen = list(dict.fromkeys(keys))
        with self._tx() as conn:
            for key in chosen:
                if conn.execute("SELECT 1 FROM takes WHERE key = ?", (key,)).fetchone() is None:
                    raise KeyError(key)
            conn.executemany("DELETE FROM selects WHERE key = ?", [(k,) for k in instead_of])
            conn.executemany(
                "INSERT OR REPLACE INTO selects (key, who, at) VALUES (?, ?, ?)",
                [(k, who, at) for k in chosen],
            )

    def unselect(self, keys: Iterable[str] | None = None) -> int:
        """Forget the selects of ``keys`` (all of them when None); how many were forgotten."""
        with self._tx() as conn:
            if keys is None:
                return conn.execute("DELETE FROM selects").rowcount
            return sum(conn.execute("DELETE FROM selects WHERE key = ?", (k,)).rowcount for k in keys)

    def plan(self, takes: Iterable[tuple[str, str, str, Mapping[str, Any], str]]) -> dict[str, Record]:
        """Add takes not seen before as ``planned``, each claiming a clip path no other take holds.

        ``takes`` gives (key, label, provider, spec, wanted relpath). A path already claimed by an
        earlier take, or already on disk (``exists``), gets ``_v2``, ``_v3``… — a paid clip is never
        overwritten. Returns the records of every take given, old and new.
        """
        given: list[str] = []  # keys only: the specs are written, not kept
        with self._tx() as conn:
            known = {r[0] for r in conn.execute("SELECT key FROM takes")}
            claimed = {r[0] for r in conn.execute("SELECT output FROM takes WHERE output IS NOT NULL")}
            for key, label, provider, spec, wanted in takes:
                given.append(key)
                if key in known:
                    continue
                output = free_name(wanted, claimed, self.path.parent)
                claimed.add(output)
                known.add(key)
                conn.execute(
                    "INSERT INTO takes (key, label, provider, spec, output) VALUES (?, ?, ?, ?, ?)",
                    (key, label, provider, json.dumps(spec, allow_nan=False), output),
                )
        records = self.records()
        return {key: records[key] for key in given}

    def adopt(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Into this empty journal, the ended takes of the ledger rows a lost journal wrote
        (:mod:`runner.store.rebuild`); returns how many takes. Refused if the journal holds any."""
        rebuilt = from_ledger(rows, self.run_dir)
        with self._tx() as conn:
            if conn.execute("SELECT count(*) FROM takes").fetchone()[0]:
                raise JournalError(f"{self.path}: already holds takes; nothing rebuilt")
            conn.executemany("INSERT INTO rows (seq, key, cost_usd, row) VALUES (?, ?, ?, ?)", rebuilt.rows)
            for take in rebuilt.takes:
                names = ", ".join(take)
                marks = ", ".join("?" * len(take))
                conn.execute(f"INSERT INTO takes ({names}) VALUES ({marks})", tuple(take.values()))
        return len(rebuilt.takes)

    def batch(self, pending: Iterable[Pending]) -> None:
        """Run queued calls in one transaction (one fsync); each call fails alone (savepoints)."""
        with self._tx() as conn:
            for call in pending:
                conn.execute("SAVEPOINT call")
                try:
                    call.result = call.op()
                except Exception as exc:
                    conn.execute("ROLLBACK TO call")
                    call.error = exc
                conn.execute("RELEASE call")
                call.done = True

    # The op_* methods run inside a transaction their caller holds (:meth:`batch` or a wrapper).

    def op_reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None:
        """Start attempt ``attempt``: reserve ``estimate`` and mark the take ``reserved``.

        ``check`` sees spent and reserved *inside* the transaction, so concurrent submits cannot
        overshoot the budget together. Returns its refusal (nothing written), or None. Nothing is
        sent yet: ``submitting`` is written before each POST (:meth:`op_update`) — for the first
        POST as ``then``, in this same transaction (one commit less per take).
        """
        conn = self._conn
        conn.execute("UPDATE takes SET reserved_usd=0 WHERE key=? AND state='reserved'", (key,))
        refusal = check(self._money(conn))
        if refusal is not None:
            conn.execute("UPDATE takes SET reserved_usd=? WHERE key=? AND state='reserved'", (estimate, key))
            return refusal
        conn.execute(
            "UPDATE takes SET state='reserved', attempt=?, submits=0, handle=NULL, reserved_usd=?,"
            " charged=0, failure_kind=NULL, failure_message=NULL, cost_usd=NULL, cost_source=NULL,"
            " submitted_at=NULL, finished_at=NULL, generation_s=NULL, flags='' WHERE key=?",
            (attempt, estimate, key),
        )
        if then:
            self.op_update(key, then)
        return None

    def reclaim(self, key: str) -> Record:
        """A new clip path for a take whose clip was changed on disk: the changed one is left alone."""
        with self._tx() as conn:
            claimed = {r[0] for r in conn.execute("SELECT output FROM takes WHERE output IS NOT NULL")}
            row = conn.execute("SELECT output FROM takes WHERE key=?", (key,)).fetchone()
            output = free_name(row[0], claimed, self.path.parent)
            conn.execute("UPDATE takes SET output=? WHERE key=?", (output, key))
        return self.get(key)

    def op_update(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set columns of one take (task id, submits, state…)."""
        values = {k: (";".join(v) if k == "flags" else v) for k, v in fields.items()}
        names = ", ".join(f"{name}=?" for name in values)
        self._conn.execute(f"UPDATE takes SET {names} WHERE key=?", (*values.values(), key))

    def op_release(self, key: str) -> None:
        """An attempt that was reserved but provably never sent: back to ``planned``, nothing held."""
        self._conn.execute(
            "UPDATE takes SET state='planned', reserved_usd=0, handle=NULL"
            " WHERE key=? AND state IN ('reserved', 'submitting')",
            (key,),
        )

    def op_charge(
        self, key: str, row: Mapping[str, Any], state: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """End an attempt: write its ledger row and free its reservation, in one transaction.

        The row carries the attempt's cost unless an earlier row already did ("paid but not
        saved", fetched later): then it carries 0 and the flag ``paid_earlier``, so the ledger's
        total stays the bill. Returns the row as written.
        """
        conn = self._conn
        was = conn.execute("SELECT charged FROM takes WHERE key=?", (key,)).fetchone()
        written = dict(row)
        if was is not None and was[0]:
            written["cost_usd"] = 0.0
            written["flags"] = ";".join(f for f in (written.get("flags") or "", "paid_earlier") if f)
        cost = written.get("cost_usd") or 0.0
        blob = json.dumps(written, ensure_ascii=False, allow_nan=False)
        conn.execute("INSERT INTO rows (key, cost_usd, row) VALUES (?, ?, ?)", (key, cost, blob))
        self.op_update(key, {**fields, "state": state, "reserved_usd": 0.0, "charged": 1})
        return written
