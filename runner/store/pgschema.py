"""The PostgreSQL store's tables, as migrations applied in order (runner.store.postgres).

The SQLite journal's tables with a ``scope`` column (the manifest's name), the money row kept by
triggers, and — from version 2 — team mode's runs, leases and which run directory saved a row;
version 3 the morning's selects, version 4 the accounts' shared slots, version 5 the
accounts' daily spend caps and the manifests' budgets, version 6 who waits for a slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from runner.store.base import JournalError
from runner.store.storeurl import shown, without_password

#: Migrations by version; each runs once, in order, in one transaction.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE takes (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'planned',
    attempt INTEGER NOT NULL DEFAULT 0,
    submits INTEGER NOT NULL DEFAULT 0,
    handle TEXT,
    submitted_at TEXT,
    finished_at TEXT,
    generation_s DOUBLE PRECISION,
    failure_kind TEXT,
    failure_message TEXT,
    cost_usd DOUBLE PRECISION,
    cost_source TEXT,
    reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    charged INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    bytes BIGINT,
    sha256 TEXT,
    flags TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, key),
    UNIQUE (scope, output)
);
CREATE TABLE rows (
    seq BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    row TEXT NOT NULL
);
CREATE INDEX rows_by_scope ON rows (scope, seq);
CREATE TABLE money (
    scope TEXT PRIMARY KEY,
    spent DOUBLE PRECISION NOT NULL DEFAULT 0,
    held DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE FUNCTION previz_spent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE money SET spent = spent + NEW.cost_usd WHERE scope = NEW.scope;
    RETURN NULL;
END $$;
CREATE TRIGGER money_spent AFTER INSERT ON rows FOR EACH ROW EXECUTE FUNCTION previz_spent();
CREATE FUNCTION previz_held() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE money SET held = held + NEW.reserved_usd
        - CASE WHEN TG_OP = 'UPDATE' THEN OLD.reserved_usd ELSE 0 END
        WHERE scope = NEW.scope;
    RETURN NULL;
END $$;
CREATE TRIGGER money_held AFTER INSERT OR UPDATE OF reserved_usd ON takes
    FOR EACH ROW EXECUTE FUNCTION previz_held();
""",
    # Team mode (DESIGN §7): every run of a scope, with its beat by the server's clock; a lease per
    # take (which run works on it, until when); which machine's run directory saved each row.
    2: """
CREATE TABLE owners (
    scope TEXT NOT NULL,
    token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, started TEXT NOT NULL,
    beat DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, token)
);
ALTER TABLE takes ADD COLUMN lease_run TEXT, ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE rows ADD COLUMN saved_in TEXT NOT NULL DEFAULT '';
CREATE INDEX rows_by_place ON rows (scope, saved_in, seq);
""",
    # The selects: the takes an artist chose in the morning (who, when).
    3: """
CREATE TABLE selects (
    scope TEXT NOT NULL, key TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (scope, key), FOREIGN KEY (scope, key) REFERENCES takes (scope, key)
);
""",
    # Account-wide slots (runner.store.pgslots): an account's slot count, and who holds them.
    4: """
CREATE TABLE accounts (
    account TEXT PRIMARY KEY, provider TEXT NOT NULL, slots INTEGER NOT NULL CHECK (slots > 0)
);
CREATE TABLE slot_holds (
    id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts (account), run TEXT NOT NULL,
    since TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), until TIMESTAMPTZ NOT NULL
);
CREATE INDEX slot_holds_by_account ON slot_holds (account);
""",
    # Money across manifests (runner.store.pgmoney): an account's daily spend cap, which account
    # and UTC day a take's hold and a row's cost count against, and each manifest's budget. An
    # account may be known for its cap before any run has set its slots.
    5: """
ALTER TABLE accounts ADD COLUMN daily_usd DOUBLE PRECISION CHECK (daily_usd >= 0),
    ALTER COLUMN slots DROP NOT NULL;
ALTER TABLE takes ADD COLUMN account TEXT, ADD COLUMN held_day DATE;
CREATE INDEX takes_held_by_account ON takes (account, held_day) WHERE reserved_usd > 0;
ALTER TABLE rows ADD COLUMN account TEXT, ADD COLUMN day DATE;
CREATE INDEX rows_by_account_day ON rows (account, day);
ALTER TABLE money ADD COLUMN budget_usd DOUBLE PRECISION;
""",
    # Fair slots (runner.store.pgslots): which manifest holds a slot, and the runs waiting for one.
    6: """
ALTER TABLE slot_holds ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE TABLE slot_waiters (
    account TEXT NOT NULL, run TEXT NOT NULL, scope TEXT NOT NULL,
    since TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, run)
);
""",
}

SCHEMA_VERSION = max(MIGRATIONS)
LOCK_ID = 0x70726576  # "prev": the advisory lock that serialises migrations


def migrate(conn: Any, version: Callable[[], int]) -> None:
    """Apply the migrations after ``version()`` in the caller's transaction, one machine at a time."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
    conn.execute("CREATE TABLE IF NOT EXISTS previz_schema (version INTEGER PRIMARY KEY)")
    for step in range(version() + 1, SCHEMA_VERSION + 1):
        conn.execute(MIGRATIONS[step])
        conn.execute("INSERT INTO previz_schema (version) VALUES (%s)", (step,))


def prepare_database(url: str) -> None:
    """The store's tables, up to date, without opening a manifest's scope (``previz accounts``)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn, conn.transaction():
            migrate(conn, lambda: version_of(conn))
    except psycopg.Error as exc:
        raise JournalError(
            f"{shown(url)}: cannot reach the store ({without_password(str(exc), url)})"
        ) from exc


def version_of(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT to_regclass('previz_schema') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT max(version) FROM previz_schema").fetchone()
    return int(row[0] or 0) if row else 0
