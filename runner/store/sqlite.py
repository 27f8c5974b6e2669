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
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread

from runner.errors import InputError, PrevizError
from runner.store.records import Money, Pending, Record

if TYPE_CHECKING:
    from runner.store.base import Store

SCHEMA_VERSION = 2
FILENAME = "journal.sqlite"
#: States in which a take may be billed by the provider without a ledger row yet.
IN_FLIGHT = frozenset({"submitting", "submitted", "succeeded"})
#: Every state a take's row can be in, in the order of a take's life.
STATES = ("planned", "reserved", "submitting", "submitted", "succeeded", "done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE takes (
    key TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'planned',
    attempt INTEGER NOT NULL DEFAULT 0,
    submits INTEGER NOT NULL DEFAULT 0,
    handle TEXT,
    submitted_at TEXT,
    finished_at TEXT,
    generation_s REAL,
    failure_kind TEXT,
    failure_message TEXT,
    cost_usd REAL,
    cost_source TEXT,
    reserved_usd REAL NOT NULL DEFAULT 0,
    charged INTEGER NOT NULL DEFAULT 0,
    output TEXT UNIQUE,
    bytes INTEGER,
    sha256 TEXT,
    flags TEXT NOT NULL DEFAULT ''
);
CREATE TABLE rows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    cost_usd REAL NOT NULL DEFAULT 0,
    row TEXT NOT NULL
);
"""

#: Version 2: the budget's two sums kept by triggers, so a reservation reads one row instead of
#: summing every take and every ledger row (which made 10,000-take runs quadratic). Applied to a
#: version-1 journal on open; the sums start from the tables as they are.
_MONEY = """
CREATE TABLE money (id INTEGER PRIMARY KEY CHECK (id = 1), spent REAL NOT NULL, held REAL NOT NULL);
INSERT INTO money (id, spent, held) SELECT 1,
    (SELECT coalesce(sum(cost_usd), 0) FROM rows), (SELECT coalesce(sum(reserved_usd), 0) FROM takes);
CREATE TRIGGER money_spent AFTER INSERT ON rows
    BEGIN UPDATE money SET spent = spent + NEW.cost_usd WHERE id = 1; END;
CREATE TRIGGER money_held AFTER UPDATE OF reserved_usd ON takes WHEN NEW.reserved_usd <> OLD.reserved_usd
    BEGIN UPDATE money SET held = held + NEW.reserved_usd - OLD.reserved_usd WHERE id = 1; END;
CREATE TRIGGER money_held_new AFTER INSERT ON takes WHEN NEW.reserved_usd <> 0
    BEGIN UPDATE money SET held = held + NEW.reserved_usd WHERE id = 1; END;
"""


class JournalError(InputError):
    """The journal cannot be used (corrupt, or written by a newer previz): exit 2, one line."""


class JournalWriteError(PrevizError):
    """The journal cannot be written mid-run (disk full, permissions): the run stops, exit 1.

    Nothing is sent without its write-ahead row, so what is on disk stays consistent; a task whose
    id could not be recorded is the uncertain case on the next run.
    """


R = TypeVar("R")


#: The takes table's columns in Record's field order: a record is built from the row as read.
_COLUMNS = (
    "key, label, provider, spec, state, attempt, submits, handle, submitted_at, finished_at,"
    " generation_s, failure_kind, failure_message, cost_usd, cost_source, reserved_usd, charged,"
    " output, bytes, sha256, flags"
)
_PROVIDER, _STATE, _CHARGED, _FLAGS = 2, 4, 16, 20


def _record(row: Sequence[Any]) -> Record:
    """A record from a row read as ``SELECT {_COLUMNS}``; provider and state share one string each."""
    fields = list(row)
    fields[_PROVIDER], fields[_STATE] = sys.intern(fields[_PROVIDER]), sys.intern(fields[_STATE])
    fields[_CHARGED] = bool(fields[_CHARGED])
    fields[_FLAGS] = tuple(f for f in fields[_FLAGS].split(";") if f)
    return Record(*fields)


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


class Journal:
    """Synchronous access to one run directory's journal. Thread-safe; one writer per run (the lock)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, run_dir: Path, *, readonly: bool = False) -> Journal:
        """Open (or, unless ``readonly``, create) the journal; JournalError if it cannot be trusted."""
        path = run_dir / FILENAME
        try:
            conn = _connect(path, readonly=readonly)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise JournalError(
                    f"{path}: written by a newer previz (journal version {version}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade previz-runner"
                )
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                # A small write-ahead log, folded in often and cut back after: on a nearly full
                # disk the journal must not hold megabytes of old frames (SQLite's default is 4 MB).
                conn.execute("PRAGMA wal_autocheckpoint=32")
                conn.execute("PRAGMA journal_size_limit=131072")
                if version < SCHEMA_VERSION:
                    create = _SCHEMA if version == 0 else ""
                    conn.executescript(f"BEGIN;{create}{_MONEY}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            conn.execute("SELECT count(*) FROM takes").fetchone()
        except sqlite3.OperationalError as exc:  # disk full, no permission, a folder in the way
            raise JournalError(f"{path}: cannot open the journal ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path}: not a usable journal ({exc}); move it aside to start over") from exc
        return cls(conn, path)

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

    # --- reading ------------------------------------------------------------------------------

    def records(self, *states: str) -> dict[str, Record]:
        """Every take's record by key (only those in ``states``, when given)."""
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        with self._lock:
            found = self._conn.execute(f"SELECT {_COLUMNS} FROM takes{where}", states)
            return {r[0]: _record(r) for r in found}

    def get(self, key: str) -> Record:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM takes WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return _record(row)

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

    # --- writing ------------------------------------------------------------------------------

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
                output = _free_name(wanted, claimed, self.path.parent)
                claimed.add(output)
                known.add(key)
                conn.execute(
                    "INSERT INTO takes (key, label, provider, spec, output) VALUES (?, ?, ?, ?, ?)",
                    (key, label, provider, json.dumps(spec, allow_nan=False), output),
                )
        records = self.records()
        return {key: records[key] for key in given}

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

    def reserve(
        self, key: str, attempt: int, estimate: float, check: Callable[[Money], R | None]
    ) -> R | None:
        """See :meth:`op_reserve`; one transaction."""
        with self._tx():
            return self.op_reserve(key, attempt, estimate, check)

    def update(self, key: str, **fields: Any) -> None:
        """See :meth:`op_update`; one transaction."""
        with self._tx():
            self.op_update(key, fields)

    def release(self, key: str) -> None:
        """See :meth:`op_release`; one transaction."""
        with self._tx():
            self.op_release(key)

    def charge(self, key: str, row: Mapping[str, Any], *, state: str, **fields: Any) -> dict[str, Any]:
        """See :meth:`op_charge`; one transaction."""
        with self._tx():
            return self.op_charge(key, row, state, fields)

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
            output = _free_name(row[0], claimed, self.path.parent)
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


def _free_name(wanted: str, claimed: set[str], run_dir: Path) -> str:
    stem, dot, ext = wanted.rpartition(".")
    stem = re.sub(r"_v\d+$", "", stem)
    candidate, n = wanted, 1
    while candidate in claimed or (run_dir / candidate).exists():
        n += 1
        candidate = f"{stem}_v{n}{dot}{ext}"
    return candidate


T = TypeVar("T")


class AsyncJournal:
    """The journal for the event loop: calls queue up and are committed together (group commit).

    Whoever finds no commit under way takes every call queued so far into one transaction, run
    in a worker thread — one fsync for all of them — while later callers queue for the next. The
    thread commits what queued meanwhile too (up to :attr:`ROUNDS` transactions) before handing
    back: a reservation that arrives during another take's commit then waits for that commit
    only, not for a trip through the event loop as well. A call's own failure is its alone (each
    runs under a savepoint). A commit that has started is not cancellable: a hard stop waits for
    it, so the journal is always consistent. ``inline`` runs calls on the loop itself, for tests
    whose virtual clock must see every step.
    """

    #: Transactions one trip to the worker thread may commit (its callers wake when it returns).
    ROUNDS = 3

    def __init__(
        self, journal: Store, *, on_row: Callable[[], object] | None = None, inline: bool = False
    ) -> None:
        self.sync = journal
        self._on_row = on_row  # the ledger files' projection, run after a commit that wrote rows
        self._inline = inline
        self._queue: list[Pending] = []
        self._guard = threading.Lock()  # the queue is taken from the worker thread too
        self._flushing = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self.commits = 0  # group commits made (each one fsync), for benchmarks
        self.trips = 0  # trips to the worker thread (each up to ROUNDS commits)

    async def _run(self, op: Callable[[], T], *, rows: bool = False) -> T:
        pending = Pending(op, rows=rows)
        with self._guard:
            self._queue.append(pending)
        try:
            async with self._flushing:
                if not pending.done:
                    await self._commit()
        except anyio.get_cancelled_exc_class():
            with self._guard:
                if not pending.done and pending in self._queue:
                    self._queue.remove(pending)
            raise
        if pending.error is not None:
            raise pending.error
        return cast(T, pending.result)

    def _take(self) -> list[Pending]:
        with self._guard:
            batch, self._queue = self._queue, []
        return batch

    def _commit_queued(self) -> None:
        """Every call queued so far, one transaction per round; a failed commit fails its calls."""
        for _ in range(self.ROUNDS):
            batch = self._take()
            if not batch:
                return
            self.commits += 1
            try:
                self.sync.batch(batch)
                if self._on_row is not None and any(p.rows for p in batch):
                    self._on_row()
            except Exception as exc:
                for call in batch:
                    call.done = True
                    call.error = call.error or exc

    async def _commit(self) -> None:
        self.trips += 1
        if self._inline:
            self._commit_queued()
            await anyio.lowlevel.checkpoint()
        else:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._commit_queued)

    async def reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None:
        return await self._run(partial(self.sync.op_reserve, key, attempt, estimate, check, then))

    async def update(self, key: str, **fields: Any) -> None:
        await self._run(partial(self.sync.op_update, key, fields))

    async def release(self, key: str) -> None:
        await self._run(partial(self.sync.op_release, key))

    async def reclaim(self, key: str) -> Record:
        return await anyio.to_thread.run_sync(self.sync.reclaim, key, limiter=self._limiter)

    async def charge(self, key: str, row: Mapping[str, Any], *, state: str, **fields: Any) -> dict[str, Any]:
        """End an attempt (see :meth:`Journal.charge`); the ledger files follow the commit."""
        return await self._run(partial(self.sync.op_charge, key, row, state, fields), rows=True)
