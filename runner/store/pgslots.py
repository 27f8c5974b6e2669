"""An account's slots, shared by every run on a PostgreSQL store (team mode, DESIGN §7).

Why in the store: a provider account's concurrency belongs to the account, not to a run — two
manifests on one AIML key each believing they own its slots get 429s, and on Runway their tasks
sit THROTTLED while the budget counts them as cheap. So every run on the store takes a slot of
the account's from one table before it submits, and gives it back when the task is terminal:
all machines together never have more in flight than the account's slots. A freed slot wakes a
waiting run at once (``LISTEN``/``NOTIFY``), not after a poll of the database. A hold lasts a
lease (renewed with the run's leases, :meth:`PostgresStore.renew`), so the slots of a run that
died come back with its takes, judged by the server's clock.

Runs of different manifests share the slots fairly: a run refused a slot is written down as
waiting (for a few seconds, renewed with each try), and a free slot is not taken by a manifest
while another waiting manifest holds fewer (:func:`_fair`). So a freed slot goes to the waiting
manifest with the fewest, and a short manifest is not starved by a long one that three machines
run — which, first come first served, asked three times as often. A waiter whose run died stops
counting after ``_WAITER_S``.

The account is a provider plus a keyed fingerprint of its key (:func:`account_of`): the key
itself never reaches the database.

The connections come back after the server restarts (:mod:`runner.store.pgconn`): taking a slot
waits for the store like any write (a hold whose commit went unanswered is looked up, never taken
twice); giving one back never waits — a slot given back while the store is away is owed, and paid
on the next call that reaches it (until then it stays held: the account is never over its slots).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from functools import partial
from typing import Any

import psycopg

from runner.store.pgconn import Outage, PgConn, again
from runner.store.storeurl import shown

CHANNEL = "previz_slots"


def account_of(provider: str, key: str) -> str:
    """``provider:fingerprint`` — the same key gives the same account on every machine."""
    mark = hmac.new(key.encode(), b"previz-runner account", hashlib.sha256).hexdigest()[:16]
    return f"{provider}:{mark}"


class AccountSlots:
    """One run's side of one account's shared slots (its own connection; thread-safe)."""

    def __init__(
        self,
        url: str,
        account: str,
        run: str,
        default_slots: int,
        lease_s: float,
        outage: Outage | None = None,
        *,
        scope: str = "",
    ) -> None:
        where = f"{shown(url)} (account {account})"
        self._pg = PgConn(url, where, outage or Outage())
        self._listen = PgConn(url, where, outage or Outage(), setup=_listen)
        self.account = account
        self._run = run
        self._scope = scope  # the manifest: slots are shared fairly between manifests
        self._lease_s = lease_s
        self._owed: list[int] = []  # holds given back while the store was away
        # opened after the run's store: a server that goes away meanwhile is waited for
        self._pg.connect(patient=True)
        again(partial(self._register, default_slots))
        self._listen.connect(patient=True)

    def _register(self, default_slots: int) -> None:
        with self._pg.reading() as conn:  # safe to make twice
            conn.execute(
                "INSERT INTO accounts (account, provider, slots) VALUES (%s, %s, %s)"
                " ON CONFLICT (account) DO UPDATE SET slots = EXCLUDED.slots WHERE accounts.slots IS NULL",
                (self.account, self.account.split(":", 1)[0], default_slots),
            )

    @property
    def connection(self) -> PgConn:
        """The connection slots are taken on, and its outage counters (for tests)."""
        return self._pg

    def try_take(self, others_waiting: int = 0) -> int | None:
        """A slot's hold id, or None while every slot of the account is held — or while another
        manifest that waits for one holds fewer than this one (its turn: see :func:`_fair`).
        ``others_waiting``: how many more of this run's takes wait after this one."""
        return again(partial(self._try_take, others_waiting))

    def _try_take(self, others_waiting: int) -> int | None:
        first = "SELECT pg_current_xact_id()::text, slots FROM accounts WHERE account = %s FOR UPDATE"
        with self._pg.writing(first, (self.account,)) as (conn, row):
            paid = self._pay(conn)
            slots = int(row[1]) if row and row[1] is not None else 1
            conn.execute(  # holds and waits of runs that are gone (not renewed) come back
                "DELETE FROM slot_holds WHERE account = %s AND until < clock_timestamp()", (self.account,)
            )
            conn.execute(
                "DELETE FROM slot_waiters WHERE account = %s AND until < clock_timestamp()", (self.account,)
            )
            hold = None
            if _fair(self._holds_by_manifest(conn), self._waiting(conn), slots, self._scope):
                hold = conn.execute(
                    "INSERT INTO slot_holds (account, run, scope, until)"
                    " VALUES (%s, %s, %s, clock_timestamp() + %s * interval '1 second') RETURNING id",
                    (self.account, self._run, self._scope, self._lease_s),
                ).fetchone()
            self._mark_waiting(conn, hold is None or others_waiting > 0)
        self._paid(paid)
        return None if hold is None else int(hold[0])

    def _holds_by_manifest(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        found = conn.execute(
            "SELECT scope, count(*) FROM slot_holds WHERE account = %s GROUP BY scope", (self.account,)
        ).fetchall()
        return {str(scope): int(n) for scope, n in found}

    def _waiting(self, conn: psycopg.Connection[Any]) -> set[str]:
        """The other manifests with a run waiting for one of the account's slots."""
        found = conn.execute(
            "SELECT DISTINCT scope FROM slot_waiters WHERE account = %s AND scope <> %s",
            (self.account, self._scope),
        ).fetchall()
        return {str(scope) for (scope,) in found}

    def _mark_waiting(self, conn: psycopg.Connection[Any], waiting: bool) -> None:
        """This run among the account's waiters for a few of its waits (a dead run's lapses), or not."""
        if not waiting:
            conn.execute(
                "DELETE FROM slot_waiters WHERE account = %s AND run = %s", (self.account, self._run)
            )
            return
        conn.execute(
            "INSERT INTO slot_waiters (account, run, scope, until)"
            " VALUES (%s, %s, %s, clock_timestamp() + %s * interval '1 second')"
            " ON CONFLICT (account, run) DO UPDATE SET until = EXCLUDED.until",
            (self.account, self._run, self._scope, _WAITER_S),
        )

    def give_back(self, hold: int) -> None:
        """The slot free for every run at once — or, while the store is away, owed (never waited for)."""
        with self._pg.mutex:
            self._owed.append(hold)
            with contextlib.suppress(psycopg.OperationalError):
                self._owed = [h for h in self._owed if h not in self._pay(self._pg.conn)]

    def _pay(self, conn: psycopg.Connection[Any]) -> list[int]:
        """The owed holds deleted (in the caller's transaction, if it holds one); which."""
        owed = list(self._owed)
        if owed:
            conn.execute("DELETE FROM slot_holds WHERE id = ANY(%s)", (owed,))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.account))
        return owed

    def _paid(self, paid: list[int]) -> None:
        if paid:
            with self._pg.mutex:
                self._owed = [h for h in self._owed if h not in paid]

    def wait(self, timeout: float) -> None:
        """Until a slot of any account is given back, or ``timeout`` seconds; a lost listening
        connection is tried again once (a missed notice costs one wait: ``try_take`` asks anyway)."""
        try:
            for _ in self._listen.conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.OperationalError:
            if not self._listen.try_reconnect():
                time.sleep(timeout)

    def close(self) -> None:
        """Every hold of this run given back — best effort: a store that is away lets them lapse."""
        with self._pg.mutex:
            if self._pg.conn.broken:
                self._pg.try_reconnect()
            with contextlib.suppress(psycopg.Error):
                self._pg.conn.execute("DELETE FROM slot_holds WHERE run = %s", (self._run,))
                self._pg.conn.execute("DELETE FROM slot_waiters WHERE run = %s", (self._run,))
                self._pg.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.account))
        self._pg.close()
        self._listen.close()


#: How long a run counts as waiting after its last try (it tries at least once a second).
_WAITER_S = 3.0


def _fair(held: dict[str, int], waiting: set[str], slots: int, mine: str) -> bool:
    """Whether this manifest may take a free slot now: one is free, and no other manifest that
    waits for one holds fewer than this one does. So a freed slot goes to the waiting manifest
    with the fewest — each gets its share (slots ÷ manifests wanting them), a manifest alone
    gets them all, and none starves behind a longer one that asks more often."""
    if sum(held.values()) >= slots:
        return False
    return all(held.get(other, 0) >= held.get(mine, 0) for other in waiting)


def _listen(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"LISTEN {CHANNEL}")


#: ``set_account``'s "leave it as it is".
KEEP = object()


def set_account(url: str, account: str, *, slots: int | None = None, daily_usd: object = KEEP) -> None:
    """``previz accounts set``: the account's slots and daily spend cap (USD, or None: no cap)
    for every run on the store; what is not given stays. An account not seen yet is added (its
    slots, if not given, are set by the first run that uses it)."""
    cap = None if daily_usd is KEEP else daily_usd
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "INSERT INTO accounts (account, provider, slots, daily_usd) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (account) DO UPDATE SET slots = coalesce(%s, accounts.slots),"
            " daily_usd = CASE WHEN %s THEN accounts.daily_usd ELSE EXCLUDED.daily_usd END",
            (account, account.split(":", 1)[0], slots, cap, slots, daily_usd is KEEP),
        )
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, account))
