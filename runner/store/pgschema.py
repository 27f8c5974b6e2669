"""The PostgreSQL store's tables, as migrations applied in order (runner.store.postgres).

The SQLite journal's tables with a ``scope`` column (the manifest's name), the money row kept by
triggers, and — from version 2 — team mode's runs, leases and which run directory saved a row.
"""

from __future__ import annotations

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
}

SCHEMA_VERSION = max(MIGRATIONS)
LOCK_ID = 0x70726576  # "prev": the advisory lock that serialises migrations
