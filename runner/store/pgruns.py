"""The runs of a team store's scope and the leases on its takes: who works on what (DESIGN §7).

Why a module of its own: in team mode many runs work on one manifest at once, each on its own
machine. Which runs are there (their owner rows and beats, judged by the server's clock), which
run works on which take (a lease, renewed while the run lives, free at once when it ends or is
found gone), and what a waiting run may pick up (the takes whose leases lapsed) are one concept,
apart from the takes' states and money that :mod:`runner.store.postgres` keeps.

Used by :class:`~runner.store.postgres.PostgresStore`, of which :class:`ScopeRuns` is a mixin (as
:mod:`runner.store.pgmoney` is): they are the store protocol's — ``claim``, ``beat``, ``disown``
for :mod:`runner.store.owner`'s heartbeat, ``holder`` for ``previz status``, ``op_lease``,
``renew``, ``lapsed``, ``unended`` for :mod:`runner.engine.claims`. Those that reach the
database on their own are made again after a lost connection by ``PostgresStore``'s
``comes_back`` (they are listed there). Imported only for a ``postgresql://`` store.
"""

from __future__ import annotations

import socket
from collections.abc import Collection
from typing import Any

import psycopg

from runner.store.owner import LEASE_S, Owner, is_gone
from runner.store.pgconn import Outage, Scoped
from runner.store.records import COLUMNS, Record, record_of


class ScopeRuns(Scoped):
    """The scope's runs and its takes' leases (a mixin of :class:`PostgresStore`)."""

    _stopped: str | None  # why every write is refused from now on (this run was taken over)
    location: str

    # --- the runs of a scope (runner.store.owner): many at once, each with its beat ------------

    _RUNS = "SELECT token, pid, host, started, beat FROM owners WHERE scope = %s"
    _NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"

    def claim(self, me: Owner) -> Owner | None:
        """Join the scope's runs (team mode: runs cooperate, none is refused); the rows of runs
        that are gone — judged by the server's clock — are cleared, and the first is returned."""
        with self._tx() as conn:
            now = float(conn.execute(self._NOW).fetchone()[0])  # type: ignore[index]
            runs = [Owner(*r) for r in conn.execute(self._RUNS, (self._scope,)).fetchall()]
            gone = [run for run in runs if run.token != me.token and is_gone(run, now, me.host)]
            for run in gone:
                conn.execute("DELETE FROM owners WHERE scope = %s AND token = %s", (self._scope, run.token))
                self._free(conn, run.token)
            conn.execute(
                "INSERT INTO owners (scope, token, pid, host, started, beat) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (scope, token) DO UPDATE SET beat = EXCLUDED.beat",
                (self._scope, me.token, me.pid, me.host, me.started, now),
            )
        return gone[0] if gone else None

    def beat(self, token: str, now: float) -> bool:
        with self._tx() as conn:
            found = conn.execute(
                f"UPDATE owners SET beat = ({self._NOW}) WHERE scope = %s AND token = %s",
                (self._scope, token),
            )
            if found.rowcount == 1:
                return True
        self._stopped = (
            f"{self.location}: this run was taken for gone (its beat lapsed) and its takes taken over;"
            " nothing more is sent by this one"
        )
        return False

    def _free(self, conn: psycopg.Connection[Any], run: str) -> None:
        """What a run that is provably gone still held, free at once (not after the lease time):
        a run that ended because the store was away could not give its leases and slots back."""
        conn.execute(
            "UPDATE takes SET lease_until = '-infinity' WHERE scope = %s AND lease_run = %s",
            (self._scope, run),
        )
        conn.execute("DELETE FROM slot_holds WHERE run = %s", (run,))

    def holder(self) -> Owner | None:
        """The live run of this scope that beat last (team mode: there may be more)."""
        with self._lock:
            now = float(self._conn.execute(self._NOW).fetchone()[0])  # type: ignore[index]
            runs = [Owner(*r) for r in self._conn.execute(self._RUNS, (self._scope,)).fetchall()]
        live = [run for run in runs if not is_gone(run, now, socket.gethostname())]
        return max(live, key=lambda run: run.beat) if live else None

    def disown(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM owners WHERE scope = %s AND token = %s", (self._scope, token))
            conn.execute(  # what it still held is free at once, not after the lease time
                "UPDATE takes SET lease_until = '-infinity' WHERE scope = %s AND lease_run = %s",
                (self._scope, token),
            )

    # --- leases: which run works on a take (team mode, runner.engine.claims) -----------------

    def op_lease(self, key: str, run: str, seconds: float) -> Record | None:
        """Take ``key`` for ``run`` until ``seconds`` from now by the server's clock, unless it has
        ended or another run's lease on it is still running; its fresh record, or None."""
        row = self._conn.execute(
            f"UPDATE takes SET lease_run = %s, lease_until = clock_timestamp() + %s * interval '1 second'"
            f" WHERE scope = %s AND key = %s AND state NOT IN {_ENDED}"
            f" AND (lease_run IS NULL OR lease_run = %s OR ({_LAPSED}))"
            f" RETURNING {COLUMNS}",
            (run, seconds, self._scope, key, run, seconds),
        ).fetchone()
        return None if row is None else record_of(row)

    def renew(self, run: str, seconds: float) -> int:
        """Push ``run``'s leases (and its accounts' slot holds) ``seconds`` past now; how many takes."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE slot_holds SET until = clock_timestamp() + %s * interval '1 second' WHERE run = %s",
                (seconds, run),
            )
            found = conn.execute(
                "UPDATE takes SET lease_until = clock_timestamp() + %s * interval '1 second'"
                f" WHERE scope = %s AND lease_run = %s AND state NOT IN {_ENDED}",
                (seconds, self._scope, run),
            )
            return found.rowcount

    def lapsed(self, *, besides: str | None = None, seconds: float = LEASE_S) -> list[Record]:
        """Takes not ended that no live lease holds: what a waiting run may pick up. ``besides``:
        only those another run than that one leased and let lapse (a dead run's, while it feeds).
        ``seconds``: the lease time, also the grace after the server started (see ``_LAPSED``)."""
        which = f"lease_until IS NULL OR ({_LAPSED})"
        if besides is not None:
            which = f"lease_run IS NOT NULL AND lease_run <> %s AND ({_LAPSED})"
        with self._lock:
            found = self._conn.execute(
                f"SELECT {COLUMNS} FROM takes WHERE scope = %s AND state NOT IN {_ENDED}"
                f" AND ({which}) ORDER BY key",
                (self._scope, seconds) if besides is None else (self._scope, besides, seconds),
            )
            return [record_of(r) for r in found.fetchall()]

    def unended(self, besides: Collection[str] = ()) -> int:
        with self._lock:
            row = self._conn.execute(
                f"SELECT count(*) FROM takes WHERE scope = %s AND state NOT IN {_ENDED}"
                " AND NOT (key = ANY(%s))",
                (self._scope, list(besides)),
            ).fetchone()
        return int(row[0]) if row else 0


_ENDED = "('done', 'failed', 'cancelled')"

#: A lease has lapsed once its time is past — but not before the server has been up for a lease
#: time and two of the longest reconnect waits: after a restart or an outage, live runs are still
#: reconnecting and have had no chance to renew, and taking their takes over would buy a take
#: whose submit answer waits for the store a second time (AIML did, with a 1.5 s lease and a 4 s
#: outage, before the reconnect waits were counted). A lease its run gave back (``-infinity``: it
#: ended, or was found gone) is free at once. Its one parameter is the lease time in seconds.
_LAPSED = (
    "lease_until = '-infinity' OR (lease_until < clock_timestamp() AND pg_postmaster_start_time()"
    f" < clock_timestamp() - (%s + {2 * Outage().most_s}) * interval '1 second')"
)
