"""An account's slots, shared by every run on a PostgreSQL store (team mode, DESIGN §7).

Why in the store: a provider account's concurrency belongs to the account, not to a run — two
manifests on one AIML key each believing they own its slots get 429s, and on Runway their tasks
sit THROTTLED while the budget counts them as cheap. So every run on the store takes a slot of
the account's from one table before it submits, and gives it back when the task is terminal:
all machines together never have more in flight than the account's slots. A freed slot wakes a
waiting run at once (``LISTEN``/``NOTIFY``), not after a poll of the database. A hold lasts a
lease (renewed with the run's leases, :meth:`PostgresStore.renew`), so the slots of a run that
died come back with its takes, judged by the server's clock.

The account is a provider plus a keyed fingerprint of its key (:func:`account_of`): the key
itself never reaches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

import psycopg

CHANNEL = "previz_slots"


def account_of(provider: str, key: str) -> str:
    """``provider:fingerprint`` — the same key gives the same account on every machine."""
    mark = hmac.new(key.encode(), b"previz-runner account", hashlib.sha256).hexdigest()[:16]
    return f"{provider}:{mark}"


class AccountSlots:
    """One run's side of one account's shared slots (its own connection; thread-safe)."""

    def __init__(self, url: str, account: str, run: str, default_slots: int, lease_s: float) -> None:
        self._conn: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True, connect_timeout=10)
        self._listen: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True, connect_timeout=10)
        self._lock = threading.Lock()
        self.account = account
        self._run = run
        self._lease_s = lease_s
        self._conn.execute(
            "INSERT INTO accounts (account, provider, slots) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (account, account.split(":", 1)[0], default_slots),
        )
        self._listen.execute(f"LISTEN {CHANNEL}")

    def try_take(self) -> int | None:
        """A slot's hold id, or None while every slot of the account is held."""
        with self._lock, self._conn.transaction():
            row = self._conn.execute(
                "SELECT slots FROM accounts WHERE account = %s FOR UPDATE", (self.account,)
            ).fetchone()
            slots = int(row[0]) if row else 1
            self._conn.execute(  # holds of runs that are gone (not renewed) come back
                "DELETE FROM slot_holds WHERE account = %s AND until < clock_timestamp()", (self.account,)
            )
            held = self._conn.execute(
                "SELECT count(*) FROM slot_holds WHERE account = %s", (self.account,)
            ).fetchone()
            if held is not None and int(held[0]) >= slots:
                return None
            hold = self._conn.execute(
                "INSERT INTO slot_holds (account, run, until)"
                " VALUES (%s, %s, clock_timestamp() + %s * interval '1 second') RETURNING id",
                (self.account, self._run, self._lease_s),
            ).fetchone()
        assert hold is not None
        return int(hold[0])

    def give_back(self, hold: int) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM slot_holds WHERE id = %s", (hold,))
            self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.account))

    def wait(self, timeout: float) -> None:
        """Until a slot of any account is given back, or ``timeout`` seconds."""
        for _ in self._listen.notifies(timeout=timeout, stop_after=1):
            pass

    def close(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM slot_holds WHERE run = %s", (self._run,))
            self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.account))
            self._conn.close()
        self._listen.close()


def set_slots(url: str, account: str, slots: int) -> None:
    """``previz accounts set``: the account's slot count for every run on the store."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "INSERT INTO accounts (account, provider, slots) VALUES (%s, %s, %s)"
            " ON CONFLICT (account) DO UPDATE SET slots = EXCLUDED.slots",
            (account, account.split(":", 1)[0], slots),
        )
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, account))


def accounts(url: str) -> list[tuple[str, int, int]]:
    """Every account the store knows: (account, slots, held now)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "SELECT a.account, a.slots, (SELECT count(*) FROM slot_holds h WHERE h.account = a.account)"
            " FROM accounts a ORDER BY a.account"
        ).fetchall()
    return [(str(a), int(s), int(h)) for a, s, h in found]
