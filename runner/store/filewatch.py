"""The file under an open journal, when it is no longer the one the run opened (issue 24 point 2).

Why: a journal deleted under a run takes every task id in flight with it — the next run would buy
them again — and one replaced by another file must not be written by this run. So
:class:`~runner.store.sqlite.Journal` checks the file's identity before each write and, when it
changed, comes here: a deleted journal is put back from the run's open connection (SQLite's backup
API), a replaced one is left alone and this run's copy kept beside it. Either way the run stops
sending; which journal is true is the user's call.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def copy_to(conn: sqlite3.Connection, target: Path) -> None:
    """The journal behind ``conn``, whole, into a new file ``target``."""
    target.unlink(missing_ok=True)
    copy = sqlite3.connect(target)
    try:
        conn.backup(copy)
    finally:
        copy.close()


def put_back(
    conn: sqlite3.Connection, path: Path, reconnect: Callable[[], sqlite3.Connection]
) -> tuple[str, sqlite3.Connection | None]:
    """Write ``conn``'s journal back at ``path``; the line to stop with, and the new connection."""
    tmp = path.with_name(f".{path.name}.restore-{os.getpid()}")
    try:
        copy_to(conn, tmp)
        conn.close()
        for suffix in ("-wal", "-shm"):  # the deleted journal's log, still at the old names
            stale = path.with_name(path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.replace(stale, stale.with_name(f"{stale.name}.orphan-{os.getpid()}"))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink(missing_ok=True)
        fresh = reconnect()
    except (OSError, sqlite3.Error) as exc:
        return (
            f"{path} was deleted while the run was going and could not be put back ({exc}); "
            "nothing more is sent — keep this run's clips and ledger, and see docs/reliability.md"
        ), None
    return (
        f"{path} was deleted while the run was going: put back from the run's open copy; "
        "nothing more is sent — rerun the same command to collect the takes in flight"
    ), fresh


def keep_aside(conn: sqlite3.Connection, path: Path) -> str:
    """Keep ``conn``'s journal beside the file that replaced it; the line to stop with."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.this-run-{stamp}")
    try:
        copy_to(conn, aside)
    except (OSError, sqlite3.Error) as exc:
        kept = f"this run's journal could not be kept aside ({exc})"
    else:
        kept = f"this run's journal is kept as {aside.name}"
    return (
        f"{path} was replaced by another file while the run was going; {kept}; nothing more "
        "is sent — decide which journal is true, put it at journal.sqlite, and rerun"
    )
