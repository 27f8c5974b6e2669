"""``journal.sqlite``'s tables, their versions, and the checks a file must pass before it is trusted.

Why a file is checked before anything is written to it: SQLite takes an empty file — or any
database at all — as a place to create tables in. An emptied journal (0 bytes, after a full disk or
a careless ``> journal.sqlite``) was taken as a new one, and ``run`` bought every done take again.
So a journal is trusted only when it is what previz writes: ``user_version`` set, the ``takes`` and
``rows`` tables with the columns of this schema, every value of the type its column holds. Anything
else is :class:`JournalError` (exit 2, one line, the file untouched) naming how to recover. Tables
previz does not know (a later version's) are left alone.

A new journal is written whole into a temporary file and linked into place, so a kill while it is
made leaves either no journal or a complete one — never the empty file that would be refused.

Versions: 1 the takes and rows; 2 the budget's sums kept by triggers (a reservation reads one row
instead of summing every take and row, which made 10,000-take runs quadratic); 3 the owner row
(:mod:`runner.store.owner`); 4 the selects (the takes an artist circled: who, when). Older journals
are brought up to date on open; a read-only open of an older one reads what it has.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from runner.store.base import JournalError

SCHEMA_VERSION = 4
FILENAME = "journal.sqlite"
#: Every state a take's row can be in, in the order of a take's life.
STATES = ("planned", "reserved", "submitting", "submitted", "succeeded", "done", "failed", "cancelled")

_TAKES = """
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

_OWNER = """
CREATE TABLE owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, started TEXT NOT NULL, beat REAL NOT NULL
);
"""

_SELECTS = """
CREATE TABLE selects (key TEXT PRIMARY KEY REFERENCES takes(key), who TEXT NOT NULL, at TEXT NOT NULL);
"""

#: What each version adds, applied in order from the journal's own version.
_STEPS = {1: _TAKES, 2: _MONEY, 3: _OWNER, 4: _SELECTS}

#: Each column previz reads, and the SQLite types its values may have (NULL where the column allows).
_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "takes": {
        **dict.fromkeys(("key", "label", "provider", "spec", "state", "flags"), ("text",)),
        **dict.fromkeys(("attempt", "submits", "charged"), ("integer",)),
        **dict.fromkeys(
            ("handle", "submitted_at", "finished_at", "failure_kind", "failure_message", "cost_source"),
            ("text", "null"),
        ),
        **dict.fromkeys(("output", "sha256"), ("text", "null")),
        **dict.fromkeys(("generation_s", "cost_usd"), ("real", "integer", "null")),
        "reserved_usd": ("real", "integer"),
        "bytes": ("integer", "null"),
    },
    "rows": {"seq": ("integer",), "key": ("text",), "cost_usd": ("real", "integer"), "row": ("text",)},
    "selects": dict.fromkeys(("key", "who", "at"), ("text",)),
}
#: The version that added a table checked above (older journals are checked without it).
_SINCE = {"selects": 4}
_MOVE_ASIDE = "move it aside (mv {name} {name}.bad) and rerun: ledger.jsonl shows what is done"


def refuse_empty(path: Path) -> None:
    """JournalError for a journal file of 0 bytes (SQLite would take it as a new database)."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == 0:
            raise JournalError(
                f"{path}: the journal is empty (0 bytes), so what was done cannot be known; "
                + _MOVE_ASIDE.format(name=FILENAME)
            )


def check(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """JournalError unless the tables are previz's own and every value has its column's type."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path}: written by a newer previz (journal version {version}, this one reads "
            f"{SCHEMA_VERSION}); upgrade previz-runner"
        )
    if version == 0:
        if names:
            raise _foreign(path, f"tables {', '.join(sorted(names))} but no journal version")
        return
    for table, types in _TYPES.items():
        if _SINCE.get(table, 1) > version:
            continue
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        missing = sorted(set(types) - have)
        if missing:
            raise _foreign(path, f"its {table} table lacks {', '.join(missing)}")
        wrong = _wrongly_typed(conn, table, types)
        if wrong is not None:
            raise _foreign(path, wrong)


def _wrongly_typed(conn: sqlite3.Connection, table: str, types: dict[str, tuple[str, ...]]) -> str | None:
    """The first column of ``table`` holding a value of a type it never holds (a blob, a number)."""
    for column, allowed in types.items():
        kinds = ", ".join(f"'{k}'" for k in allowed)
        query = f"SELECT typeof({column}) FROM {table} WHERE typeof({column}) NOT IN ({kinds}) LIMIT 1"
        found = conn.execute(query).fetchone()
        if found is not None:
            return f"its {table}.{column} holds a {found[0]} value"
    if table != "takes":
        return None
    marks = ", ".join("?" * len(STATES))
    state = conn.execute(f"SELECT state FROM takes WHERE state NOT IN ({marks}) LIMIT 1", STATES).fetchone()
    return None if state is None else f"a take is in the unknown state {state[0]!r}"


def _foreign(path: Path, what: str) -> JournalError:
    return JournalError(f"{path}: not a journal previz wrote ({what}); " + _MOVE_ASIDE.format(name=FILENAME))


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a journal at ``version`` up to :data:`SCHEMA_VERSION`, in one transaction."""
    steps = "".join(_STEPS[v] for v in range(version + 1, SCHEMA_VERSION + 1))
    conn.executescript(f"BEGIN;{steps}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")


def create(path: Path) -> None:
    """A new, complete journal at ``path`` unless one appeared there meanwhile.

    Written into a temporary file and hard-linked into place: the link fails if ``path`` exists,
    so a journal is never replaced. A write-ahead log left without its journal (the journal was
    deleted, its ``-wal`` was not) would be replayed into the new file by SQLite: it is moved aside.
    """
    for suffix in ("-wal", "-shm"):
        stale = path.with_name(path.name + suffix)
        if stale.exists():
            os.replace(stale, stale.with_name(f"{stale.name}.orphan-{os.getpid()}"))
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            migrate(conn, 0)
        finally:
            conn.close()
        _link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _link(tmp: Path, path: Path) -> None:
    """``tmp`` at ``path`` unless something is there; a rename where hard links are not offered."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return
    except OSError:  # no hard links here (some network and FAT file systems): the run lock is held
        if not path.exists():
            os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    """The new name made durable (POSIX); Windows has no directory handle to sync."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- opening a journal that passed the checks ----------------------------------------------------


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def open_checked(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection to a journal that passed :func:`check`, brought up to date unless read-only."""
    refuse_empty(path)
    if not readonly and not path.exists():
        create(path)
    conn = connect(path, readonly=readonly)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        check(conn, path, version)  # before WAL mode: a refused file is left byte for byte
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # A small write-ahead log, folded in often and cut back after: on a nearly full
            # disk the journal must not hold megabytes of old frames (SQLite's default is 4 MB).
            conn.execute("PRAGMA wal_autocheckpoint=32")
            conn.execute("PRAGMA journal_size_limit=131072")
            if version < SCHEMA_VERSION:
                migrate(conn, version)
        conn.execute("SELECT count(*) FROM takes").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn
