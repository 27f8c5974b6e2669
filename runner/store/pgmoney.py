"""Money across manifests on a team store: an account's daily spend cap, a manifest's budget.

Why: a studio's provider account is shared by every manifest on every machine, and its
accountant caps what it may spend in a day (``previz accounts set … --daily-usd``). A cap is
kept the way a manifest's budget is: a take's estimate is held against its account's day in the
same transaction as its reservation, and its cost counts against the day it was held on, so a
take that ends after midnight is the day's that decided to buy it. The day is the store's UTC
day, by the server's clock — never a workstation's.

Why an advisory lock: two manifests hold their own money rows, so nothing else makes their
reservations on one account take turns. The lock is per account and taken for every account the
run uses, in one fixed order (a transaction of the group commit may reserve takes of several
providers), so two runs can never wait for each other's accounts in opposite orders. A run with
no cap on a take's account takes no lock at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from runner.store.pgconn import Scoped
from runner.store.records import DayMoney

#: The advisory locks' first key ("prem"); the second is the account's (:func:`_lock_key`).
_LOCKS = 0x7072656D
#: The store's UTC day now, by the server's clock (never a workstation's).
TODAY = "(clock_timestamp() AT TIME ZONE 'UTC')::date"
#: A take's columns that say which account and day its cost counts on (:meth:`_counted_on`).
COUNTED_ON = f"account, held_day::text, provider, {TODAY}::text"


class AccountMoney(Scoped):
    """The store's side of account caps and budgets (a mixin of :class:`PostgresStore`)."""

    _accounts: dict[str, str]  # provider → account, for this run's providers

    def use_accounts(self, accounts: Mapping[str, str]) -> None:
        """This run's providers' accounts (``provider:fingerprint``): whose day a take counts on."""
        self._accounts = dict(accounts)

    def _day_of(self, conn: psycopg.Connection[Any], key: str) -> tuple[str | None, str, DayMoney | None]:
        """The take's account, today, and — when the account has a daily cap — its day's money,
        read under the accounts' locks (held to the end of the caller's transaction)."""
        account = self._account_of(conn, key)
        if account is None:
            return None, "", None
        found = conn.execute(
            f"SELECT (SELECT daily_usd FROM accounts WHERE account = %s), {TODAY}::text", (account,)
        ).fetchone()
        cap, day = (found[0], str(found[1])) if found else (None, "")
        if cap is None:
            return account, day, None
        for lock in sorted({_lock_key(a) for a in self._accounts.values()}):
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, lock))
        spent, held = conn.execute(
            "SELECT (SELECT coalesce(sum(cost_usd), 0) FROM rows WHERE account = %s AND day = %s),"
            " (SELECT coalesce(sum(reserved_usd), 0) FROM takes"
            "  WHERE account = %s AND held_day = %s AND reserved_usd > 0)",
            (account, day, account, day),
        ).fetchone() or (0.0, 0.0)
        return account, day, DayMoney(account, float(cap), round(float(spent), 9), round(float(held), 9), day)

    def _account_of(self, conn: psycopg.Connection[Any], key: str) -> str | None:
        if not self._accounts:
            return None
        row = conn.execute(
            "SELECT provider FROM takes WHERE scope = %s AND key = %s", (self._scope, key)
        ).fetchone()
        return self._accounts.get(str(row[0])) if row else None

    def _hold_on(self, conn: psycopg.Connection[Any], key: str, account: str | None, day: str) -> None:
        """The take's estimate (just reserved) counted on ``account``'s ``day``."""
        if account is not None:
            conn.execute(
                "UPDATE takes SET account = %s, held_day = %s WHERE scope = %s AND key = %s",
                (account, day, self._scope, key),
            )

    def _counted_on(self, found: Sequence[Any]) -> tuple[str | None, str | None]:
        """The account and day a take's cost counts on, from its :data:`COUNTED_ON` columns: its
        hold's (else the run's account for its provider, today)."""
        held_account, held_day, provider, today = found
        account = held_account or self._accounts.get(str(provider))
        return account, (held_day or today) if account else None

    def set_budget(self, budget_usd: float | None) -> None:
        """The manifest's budget, for the studio's view (``status --store``: spend against it)."""
        with self._tx() as conn:
            conn.execute("UPDATE money SET budget_usd = %s WHERE scope = %s", (budget_usd, self._scope))


def _lock_key(account: str) -> int:
    """A signed 32-bit key for the account's advisory lock, the same on every machine."""
    return int.from_bytes(hashlib.sha256(account.encode()).digest()[:4], "big", signed=True)
