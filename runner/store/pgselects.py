"""The selects on a team store: the takes an artist chose, by shot, kept with the manifest's takes.

Why a module of its own: selects are the editorial side of a run directory (``previz select``,
``report.html``, ``previz export --otio``, DESIGN §1), written by people the morning after, not by
the engine while it buys takes; nothing about them touches money, leases or the ledger. On a team
store they are rows of the ``selects`` table under the manifest's ``scope``, so a select made on
one machine is seen by every machine that reads the same manifest.

Used by :class:`~runner.store.postgres.PostgresStore`, of which :class:`ScopeSelects` is a mixin
(as :mod:`runner.store.pgmoney` is); the SQLite journal keeps the same three methods over its own
table. A write runs in the store's write transaction (``_tx``), so a select of a take that is not
there is refused whole (``KeyError``) and ``instead_of`` is forgotten in the same commit. All
three are made again after a lost connection by ``PostgresStore``'s ``comes_back``. Imported only
for a ``postgresql://`` store.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.store.pgconn import Scoped


class ScopeSelects(Scoped):
    """The scope's selects: who chose which take, and when (a mixin of :class:`PostgresStore`)."""

    def selects(self) -> dict[str, tuple[str, str]]:
        with self._lock:
            found = self._conn.execute(
                "SELECT key, who, at FROM selects WHERE scope = %s ORDER BY at, key", (self._scope,)
            ).fetchall()
        return {key: (who, at) for key, who, at in found}

    def select(self, keys: Iterable[str], who: str, at: str, *, instead_of: Iterable[str] = ()) -> None:
        chosen = list(dict.fromkeys(keys))
        with self._tx() as conn:
            for key in chosen:
                found = conn.execute("SELECT 1 FROM takes WHERE scope = %s AND key = %s", (self._scope, key))
                if found.fetchone() is None:
                    raise KeyError(key)
            for key in instead_of:
                conn.execute("DELETE FROM selects WHERE scope = %s AND key = %s", (self._scope, key))
            for key in chosen:
                conn.execute(
                    "INSERT INTO selects (scope, key, who, at) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (scope, key) DO UPDATE SET who = EXCLUDED.who, at = EXCLUDED.at",
                    (self._scope, key, who, at),
                )

    def unselect(self, keys: Iterable[str] | None = None) -> int:
        with self._tx() as conn:
            if keys is None:
                return conn.execute("DELETE FROM selects WHERE scope = %s", (self._scope,)).rowcount
            return sum(
                conn.execute("DELETE FROM selects WHERE scope = %s AND key = %s", (self._scope, k)).rowcount
                for k in keys
            )
