"""The studio-wide view of a team store: every manifest, every machine, read in one snapshot.

Why apart from :mod:`runner.store.postgres`: that store is one manifest's (its ``scope``) for
one run directory, and writes; ``previz status --store`` and ``previz report --store`` read
across every scope and every machine and never write — one read-only connection and one
``REPEATABLE READ`` transaction, so the counts, the money and the leases of a view all come
from the same moment, and "live" and "until when" are judged by the server's clock (DESIGN §7),
never by the workstation asking. Imported only when a ``postgresql://`` store is given.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runner.store.base import JournalError
from runner.store.owner import Owner, is_gone
from runner.store.pgmoney import TODAY
from runner.store.pgschema import SCHEMA_VERSION, version_of
from runner.store.storeurl import shown, without_password

_ENDED = "('done', 'failed', 'cancelled')"


@dataclass(frozen=True)
class StoredRow:
    """One ledger row as the store keeps it: its manifest (scope) and the run directory that saved it."""

    scope: str
    saved_in: str  # "host:run_dir" ('' for rows written before team mode's version 2)
    row: dict[str, Any]

    @property
    def host(self) -> str:
        """The row's own ``host`` column; for older rows, the host part of ``saved_in``."""
        return str(self.row.get("host") or self.saved_in.split(":", 1)[0] or "")


@dataclass(frozen=True)
class Run:
    scope: str
    token: str
    host: str
    pid: int
    started: str
    beat_age_s: float  # seconds since its last beat, by the server's clock
    live: bool


@dataclass(frozen=True)
class Lease:
    scope: str
    run: str
    host: str | None  # None: the holder's owner row is gone
    pid: int | None
    takes: int
    until: str  # ISO 8601 UTC, by the server's clock
    left_s: float


@dataclass(frozen=True)
class Manifest:
    scope: str
    counts: dict[str, int]
    spent_usd: float
    reserved_usd: float
    budget_usd: float | None = None  # as its last run gave it (None: no budget, or not yet known)


@dataclass(frozen=True)
class Account:
    account: str  # provider:fingerprint (never the key)
    provider: str
    slots: int | None  # None: set by the first run that uses the account
    in_flight: int  # slots held now (submit until terminal), every machine together
    holders: dict[str, int] = field(default_factory=dict)  # "host (manifest)" → slots held
    daily_usd: float | None = None  # the daily spend cap, or None
    today_spent_usd: float = 0.0  # charged on the store's UTC day, every manifest together
    today_reserved_usd: float = 0.0  # held today for takes in flight
    today_takes: int = 0  # takes recorded today (a ledger row on the store's UTC day)
    waiting: list[str] = field(default_factory=list)  # manifests with a run waiting for a slot


@dataclass(frozen=True)
class Snapshot:
    now: str
    manifests: list[Manifest]
    runs: list[Run]
    leases: list[Lease]
    accounts: list[Account]


class Studio:
    """A read-only connection to a team store (any number of manifests)."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self._conn = conn
        self.location = shown(url)

    @classmethod
    def open(cls, url: str) -> Studio:
        """Connect read-only and check the tables are a previz store's; JournalError if not."""
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise JournalError(f"{shown(url)}: cannot reach the store ({_reason(exc, url)})") from exc
        try:
            conn.execute("SET default_transaction_read_only = on")
            conn.execute("SET TIME ZONE 'UTC'")
            _check_version(version_of(conn), shown(url))
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(f"{shown(url)}: not a usable store ({_reason(exc, url)})") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, url)

    def close(self) -> None:
        self._conn.close()

    def rows(self) -> Iterator[StoredRow]:
        """Every ledger row of every manifest, in the order they were written."""
        with self._conn.transaction(), self._conn.cursor(name="previz_rows") as cur:
            cur.execute("SELECT scope, saved_in, row FROM rows ORDER BY seq")
            for scope, saved_in, row in cur:
                yield StoredRow(str(scope), str(saved_in or ""), json.loads(row))

    def account_of_provider(self) -> dict[str, str]:
        """provider → account, for each provider the store knows exactly one account of.

        A row does not say which key bought it; when the store knows one account of its provider,
        every team run of that provider used it (each run registers its account before it sends).
        With two or more, the row is the provider's alone — nothing is guessed.
        """
        found = self._conn.execute(
            "SELECT provider, min(account) FROM accounts GROUP BY provider HAVING count(*) = 1"
        ).fetchall()
        return {str(p): str(a) for p, a in found}

    def snapshot(self) -> Snapshot:
        """Every manifest, run, lease and account at one moment of the server's clock."""
        conn = self._conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            now_row = conn.execute(
                "SELECT clock_timestamp(), extract(epoch FROM clock_timestamp())"
            ).fetchone()
            assert now_row is not None
            return Snapshot(
                now=_iso(now_row[0]),
                manifests=self._manifests(),
                runs=self._runs(float(now_row[1])),
                leases=self._leases(),
                accounts=self._accounts(),
            )

    def _manifests(self) -> list[Manifest]:
        counts: dict[str, dict[str, int]] = {}
        for scope, state, n in self._conn.execute(
            "SELECT scope, CASE WHEN state = 'succeeded' AND charged = 1 THEN 'paid_not_saved'"
            " ELSE state END, count(*) FROM takes GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall():
            counts.setdefault(str(scope), {})[str(state)] = int(n)
        money = {
            str(s): (float(spent), float(held), None if budget is None else float(budget))
            for s, spent, held, budget in self._conn.execute(
                "SELECT scope, spent, held, budget_usd FROM money"
            ).fetchall()
        }
        manifests = []
        for scope in sorted(set(counts) | set(money)):
            spent, held, budget = money.get(scope, (0.0, 0.0, None))
            manifests.append(Manifest(scope, counts.get(scope, {}), round(spent, 6), round(held, 6), budget))
        return manifests

    def _runs(self, now: float) -> list[Run]:
        here = socket.gethostname()
        found = self._conn.execute(
            "SELECT scope, token, pid, host, started, beat FROM owners ORDER BY scope, host, started, token"
        ).fetchall()
        runs = []
        for scope, token, pid, host, started, beat in found:
            owner = Owner(str(token), int(pid), str(host), str(started), float(beat))
            age = round(max(0.0, now - owner.beat), 1)
            live = not is_gone(owner, now, here)
            runs.append(Run(str(scope), owner.token, owner.host, owner.pid, owner.started, age, live))
        return runs

    def _leases(self) -> list[Lease]:
        found = self._conn.execute(
            "SELECT t.scope, t.lease_run, o.host, o.pid, count(*), max(t.lease_until),"
            " extract(epoch FROM max(t.lease_until) - clock_timestamp())"
            " FROM takes t LEFT JOIN owners o ON o.scope = t.scope AND o.token = t.lease_run"
            " WHERE t.lease_run IS NOT NULL AND t.lease_until > clock_timestamp()"
            f" AND t.state NOT IN {_ENDED} GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 2"
        ).fetchall()
        leases = []
        for scope, run, host, pid, n, until, left in found:
            who, number = (None, None) if host is None else (str(host), int(pid))
            leases.append(
                Lease(str(scope), str(run), who, number, int(n), _iso(until), round(float(left), 1))
            )
        return leases

    def _accounts(self) -> list[Account]:
        holders: dict[str, dict[str, int]] = {}
        for account, scope, host, n in self._conn.execute(
            "SELECT h.account, o.scope, o.host, count(*) FROM slot_holds h"
            " LEFT JOIN owners o ON o.token = h.run WHERE h.until > clock_timestamp()"
            " GROUP BY 1, 2, 3 ORDER BY 1, 3, 2"
        ).fetchall():
            who = f"{host} ({scope})" if host is not None else "a run that is gone"
            holders.setdefault(str(account), {})[who] = holders.get(str(account), {}).get(who, 0) + int(n)
        waiting: dict[str, list[str]] = {}
        for account, scope in self._conn.execute(
            "SELECT DISTINCT account, scope FROM slot_waiters WHERE until > clock_timestamp() ORDER BY 1, 2"
        ).fetchall():
            waiting.setdefault(str(account), []).append(str(scope))
        return [
            Account(
                str(a),
                str(p),
                None if s is None else int(s),
                sum(holders.get(str(a), {}).values()),
                holders.get(str(a), {}),
                None if cap is None else float(cap),
                round(float(spent), 6),
                round(float(held), 6),
                int(takes),
                waiting.get(str(a), []),
            )
            for a, p, s, cap, spent, held, takes in self._conn.execute(_ACCOUNTS).fetchall()
        ]


#: Each account with its cap and today's money (runner.store.pgmoney: the day a hold was made).
_ACCOUNTS = (
    "SELECT a.account, a.provider, a.slots, a.daily_usd,"
    f" (SELECT coalesce(sum(cost_usd), 0) FROM rows WHERE account = a.account AND day = {TODAY}),"
    " (SELECT coalesce(sum(reserved_usd), 0) FROM takes"
    f"  WHERE account = a.account AND held_day = {TODAY} AND reserved_usd > 0),"
    f" (SELECT count(DISTINCT (scope, key)) FROM rows WHERE account = a.account AND day = {TODAY})"
    " FROM accounts a ORDER BY a.account"
)


def _check_version(version: int, where: str) -> None:
    if version == 0:
        raise JournalError(f"{where}: not a previz store yet (no tables); a `previz run --store` makes them")
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{where}: written by a newer previz (store version {version}, this one reads"
            f" {SCHEMA_VERSION}); upgrade previz-runner"
        )
    if version < SCHEMA_VERSION:
        raise JournalError(
            f"{where}: store version {version} is older than this previz's {SCHEMA_VERSION};"
            " `previz accounts --store URL` brings it up to date"
        )


def _iso(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)


def _reason(exc: psycopg.Error, url: str) -> str:
    """The driver's words, one line, with the URL's password never among them."""
    return without_password(str(exc), url) or exc.__class__.__name__
