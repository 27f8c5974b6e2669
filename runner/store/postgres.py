"""The PostgreSQL store: the journal's records in a database that many machines share (DESIGN §7).

Why PostgreSQL and not files copied around or a coordinator of our own: a studio's takes, budget
and provider slots must be decided in one place that survives any one machine, and PostgreSQL
already gives what that needs — transactions, row locks (a reservation locks its manifest's money
row, so concurrent runs cannot overshoot the budget together), sequences that never restart, and
the server's own clock. The tables are the SQLite journal's, with a ``scope`` column (the
manifest's name): one database holds a studio's every manifest.

The driver is psycopg 3, used synchronously: the :class:`~runner.store.base.Store` protocol is
synchronous by design and the event loop reaches it through ``AsyncJournal``'s one worker
thread, so a round trip to the server never blocks the loop (and SQLite and PostgreSQL share one
group-commit path). Nothing here is imported unless a ``postgresql://`` store is asked for.

Schema versions are migrations applied in order under an advisory lock, so two machines starting
at once do not race to create the tables.

The connection comes back after the server restarts or drops off the network
(:mod:`runner.store.pgconn`): every method that touches the database is made again once it is back
— reads always, a write transaction when it provably did not commit — for up to the outage window.

The takes, their money and the ledger rows are here; the scope's runs and the takes' leases
(:mod:`runner.store.pgruns`), the selects (:mod:`runner.store.pgselects`) and the accounts' caps
(:mod:`runner.store.pgmoney`) are mixins of :class:`PostgresStore`, each a concept of its own.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from runner.store.base import JournalError, JournalWriteError, PlannedTake
from runner.store.calls import SingleCalls
from runner.store.pgconn import Outage, PgConn, again, comes_back
from runner.store.pgmoney import COUNTED_ON, AccountMoney
from runner.store.pgruns import ScopeRuns
from runner.store.pgschema import SCHEMA_VERSION, migrate, version_of
from runner.store.pgselects import ScopeSelects
from runner.store.records import COLUMNS, Money, Pending, Record, free_name, record_of
from runner.store.storeurl import shown, without_password

R = TypeVar("R")

#: The methods made again after a lost connection (runner.store.pgconn): every one that reaches
#: the database on its own. The ``op_*`` run inside a transaction their caller holds, so they are not.
_BACK = (
    "records", "get", "money", "spend_by_source", "row_seqs", "rows_after", "selects", "select",
    "unselect", "claim", "beat", "holder", "disown", "renew", "lapsed", "unended", "plan", "reclaim",
    "reserve", "update", "release", "charge", "lease", "set_budget",
)  # fmt: skip


@comes_back(*_BACK)
class PostgresStore(ScopeRuns, ScopeSelects, AccountMoney, SingleCalls):
    """One manifest's records (``scope``) in a PostgreSQL database, for one machine's run directory."""

    def __init__(self, pg: PgConn, scope: str, run_dir: Path) -> None:
        self._pg = pg
        self._scope = scope
        self.run_dir = run_dir
        self.location = pg.location
        self._here = f"{socket.gethostname()}:{run_dir.resolve()}"  # whose ledger files a row is in
        self._stopped: str | None = None  # why every write is refused from now on (taken over)
        self._accounts: dict[str, str] = {}  # provider → account (runner.store.pgmoney)

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        """The connection now (a new one after an outage); used under :attr:`_lock` or :meth:`_tx`."""
        return self._pg.conn

    @property
    def _lock(self) -> AbstractContextManager[Any]:
        """The connection's mutex, as a block that recovers a lost connection and has the method
        made again (:meth:`PgConn.reading`): a method's reads stay plain ``with self._lock:``."""
        return self._pg.reading()

    @property
    def connection(self) -> PgConn:
        """The connection and its outage counters (for tests and benchmarks)."""
        return self._pg

    @classmethod
    def open(
        cls, url: str, *, scope: str, run_dir: Path, readonly: bool = False, outage: Outage | None = None
    ) -> PostgresStore:
        """Connect, migrate (unless ``readonly``) and make the scope's money row; JournalError if not.

        An unreachable server here is exit 2 at once: the outage window is for a store that goes
        away under a run, not for a URL that never worked."""
        where, setup = f"{shown(url)} ({scope})", _read_only if readonly else None
        pg = PgConn(url, where, outage or Outage(), setup=setup)
        try:
            pg.connect()
        except psycopg.Error as exc:
            raise JournalError(f"{shown(url)}: cannot reach the store ({_reason(exc, url)})") from exc
        store = cls(pg, scope, run_dir)
        try:
            version = store._version()
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{store.location}: written by a newer previz (store version {version}, this one"
                    f" reads {SCHEMA_VERSION}); upgrade previz-runner"
                )
            if not readonly:
                store._migrate()
        except psycopg.Error as exc:
            pg.close()
            raise JournalError(f"{store.location}: not a usable store ({_reason(exc, url)})") from exc
        except BaseException:
            pg.close()
            raise
        return store

    def _version(self) -> int:
        return version_of(self._conn)

    def _migrate(self) -> None:
        with self._conn.transaction():
            migrate(self._conn, self._version)
            self._conn.execute(
                "INSERT INTO money (scope) VALUES (%s) ON CONFLICT (scope) DO NOTHING", (self._scope,)
            )

    def close(self) -> None:
        self._pg.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction; it first locks the scope's money row (and learns its own id).

        So the writers of one manifest — on any machine — take turns, as SQLite's ``BEGIN
        IMMEDIATE`` makes them in one: a budget check sees every reservation committed before it,
        and no two writers can lock each other's rows in opposite orders. A connection lost under
        it is recovered (:meth:`PgConn.writing`): the method is made again unless it committed.
        """
        if self._stopped is not None:
            raise JournalWriteError(self._stopped)
        try:
            with self._pg.writing(_LOCK_MONEY, (self._scope,)) as (conn, _money_row):
                yield conn
        except psycopg.Error as exc:
            raise JournalWriteError(
                f"{self.location}: cannot write the store ({type(exc).__name__}); nothing more is sent"
            ) from exc

    # --- reading ------------------------------------------------------------------------------

    def records(self, *states: str) -> dict[str, Record]:
        where = " AND state = ANY(%s)" if states else ""
        args: tuple[Any, ...] = (self._scope, list(states)) if states else (self._scope,)
        with self._lock:
            found = self._conn.execute(f"SELECT {COLUMNS} FROM takes WHERE scope = %s{where}", args)
            return {r[0]: record_of(r) for r in found.fetchall()}

    def get(self, key: str) -> Record:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {COLUMNS} FROM takes WHERE scope = %s AND key = %s", (self._scope, key)
            ).fetchone()
        if row is None:
            raise KeyError(key)
        return record_of(row)

    def money(self) -> Money:
        with self._lock:
            return self._money()

    def _money(self) -> Money:
        row = self._conn.execute("SELECT spent, held FROM money WHERE scope = %s", (self._scope,)).fetchone()
        spent, held = row if row else (0.0, 0.0)
        return Money(round(float(spent), 9), round(float(held), 9))

    def spend_by_source(self) -> dict[str, float]:
        with self._lock:
            found = self._conn.execute(
                "SELECT row::json->>'cost_source', coalesce(sum(cost_usd), 0) FROM rows"
                " WHERE scope = %s GROUP BY 1",
                (self._scope,),
            ).fetchall()
        return {str(source or "estimated"): float(total) for source, total in found}

    def row_seqs(self) -> list[int]:
        """This run directory's rows (each machine's ledger files hold the takes it saved)."""
        with self._lock:
            found = self._conn.execute(
                "SELECT seq FROM rows WHERE scope = %s AND saved_in = %s ORDER BY seq",
                (self._scope, self._here),
            )
            return [int(s) for (s,) in found.fetchall()]

    def rows_after(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            found = self._conn.execute(
                "SELECT seq, row FROM rows WHERE scope = %s AND saved_in = %s AND seq > %s ORDER BY seq",
                (self._scope, self._here, seq),
            )
            return [(int(s), json.loads(r)) for s, r in found.fetchall()]

    def adopt(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Not for a shared store: it does not vanish with a run directory, so there is no ledger
        to rebuild it from (and its row numbers are the database's, not one run directory's)."""
        raise JournalError(f"{self.location}: a shared store is not rebuilt from one run directory's ledger")

    # --- writing ------------------------------------------------------------------------------

    def plan(self, takes: Iterable[PlannedTake]) -> dict[str, Record]:
        given: list[str] = []
        with self._tx() as conn:
            known = {r[0] for r in conn.execute("SELECT key FROM takes WHERE scope = %s", (self._scope,))}
            claimed = {
                r[0]
                for r in conn.execute(
                    "SELECT output FROM takes WHERE scope = %s AND output IS NOT NULL", (self._scope,)
                )
            }
            for key, label, provider, spec, wanted in takes:
                given.append(key)
                if key in known:
                    continue
                output = free_name(wanted, claimed, self.run_dir)
                claimed.add(output)
                known.add(key)
                conn.execute(
                    "INSERT INTO takes (scope, key, label, provider, spec, output)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (self._scope, key, label, provider, json.dumps(spec, allow_nan=False), output),
                )
        records = self.records()
        return {key: records[key] for key in given}

    def reclaim(self, key: str) -> Record:
        with self._tx() as conn:
            claimed = {
                r[0]
                for r in conn.execute(
                    "SELECT output FROM takes WHERE scope = %s AND output IS NOT NULL", (self._scope,)
                )
            }
            row = conn.execute(
                "SELECT output FROM takes WHERE scope = %s AND key = %s", (self._scope, key)
            ).fetchone()
            if row is None:
                raise KeyError(key)
            output = free_name(row[0], claimed, self.run_dir)
            conn.execute(
                "UPDATE takes SET output = %s WHERE scope = %s AND key = %s", (output, self._scope, key)
            )
        return self.get(key)

    def batch(self, pending: Iterable[Pending]) -> None:
        """The queued calls in one transaction, each under a savepoint (it fails alone); made again
        whole, from a clean slate, when the connection was lost before the commit landed."""
        calls = list(pending)
        again(partial(self._batch, calls))
        for call in calls:
            call.done = True

    def _batch(self, calls: list[Pending]) -> None:
        for call in calls:
            call.result, call.error = None, None
        with self._tx() as conn:
            for call in calls:
                try:
                    with conn.transaction():
                        call.result = call.op()
                except Exception as exc:
                    if self._pg.lost(exc):
                        raise  # not this call's failure: the whole transaction is made again
                    call.error = exc

    # --- inside a transaction the caller holds ------------------------------------------------

    def op_reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None:
        """As the SQLite journal's: ``check`` sees the money row this transaction holds locked —
        and, when the take's account has a daily cap, the account's day (runner.store.pgmoney)."""
        conn, scope = self._conn, self._scope
        conn.execute(
            "UPDATE takes SET reserved_usd = 0 WHERE scope = %s AND key = %s AND state = 'reserved'",
            (scope, key),
        )
        account, day, today = self._day_of(conn, key)
        refusal = check(replace(self._money(), day=today))
        if refusal is not None:
            conn.execute(
                "UPDATE takes SET reserved_usd = %s WHERE scope = %s AND key = %s AND state = 'reserved'",
                (estimate, scope, key),
            )
            return refusal
        conn.execute(
            "UPDATE takes SET state = 'reserved', attempt = %s, submits = 0, handle = NULL,"
            " reserved_usd = %s, charged = 0, failure_kind = NULL, failure_message = NULL,"
            " cost_usd = NULL, cost_source = NULL,"
            " submitted_at = NULL, finished_at = NULL, generation_s = NULL, flags = ''"
            " WHERE scope = %s AND key = %s",
            (attempt, estimate, scope, key),
        )
        self._hold_on(conn, key, account, day)
        if then:
            self.op_update(key, then)
        return None

    def op_update(self, key: str, fields: Mapping[str, Any]) -> None:
        values = {k: (";".join(v) if k == "flags" else _plain(v)) for k, v in fields.items()}
        unknown = set(values) - _WRITABLE
        if unknown:
            raise ValueError(f"not a take's column: {sorted(unknown)}")
        names = ", ".join(f"{name} = %s" for name in values)
        self._conn.execute(
            f"UPDATE takes SET {names} WHERE scope = %s AND key = %s", (*values.values(), self._scope, key)
        )

    def op_release(self, key: str) -> None:
        self._conn.execute(
            "UPDATE takes SET state = 'planned', reserved_usd = 0, handle = NULL"
            " WHERE scope = %s AND key = %s AND state IN ('reserved', 'submitting')",
            (self._scope, key),
        )

    def op_charge(
        self, key: str, row: Mapping[str, Any], state: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        conn = self._conn
        was = conn.execute(
            f"SELECT charged, {COUNTED_ON} FROM takes WHERE scope = %s AND key = %s FOR UPDATE",
            (self._scope, key),
        ).fetchone()
        written = dict(row)
        if was is not None and was[0]:
            written["cost_usd"] = 0.0
            written["flags"] = ";".join(f for f in (written.get("flags") or "", "paid_earlier") if f)
        cost = written.get("cost_usd") or 0.0
        blob = json.dumps(written, ensure_ascii=False, allow_nan=False)
        account, day = self._counted_on(was[1:]) if was is not None else (None, None)
        conn.execute(
            "INSERT INTO rows (scope, key, cost_usd, row, saved_in, account, day)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self._scope, key, cost, blob, self._here, account, day),
        )
        self.op_update(key, {**fields, "state": state, "reserved_usd": 0.0, "charged": 1})
        return written


#: A write transaction's first statement: the scope's money row locked, the transaction's id learnt.
_LOCK_MONEY = "SELECT pg_current_xact_id()::text FROM money WHERE scope = %s FOR UPDATE"


def _read_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_read_only = on")


#: The columns a caller may set (names are spliced into SQL, so they are checked against this).
_WRITABLE = frozenset(c.strip() for c in COLUMNS.split(",")) - {"key"}


def _plain(value: Any) -> Any:
    """A value as the column takes it: booleans as the 0/1 the SQLite journal writes."""
    return int(value) if isinstance(value, bool) else value


def _reason(exc: psycopg.Error, url: str) -> str:
    """The driver's words, one line, with the URL's password never among them."""
    return without_password(str(exc), url) or exc.__class__.__name__
