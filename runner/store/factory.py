"""Which store a command opens: the run directory's ``journal.sqlite``, or a team's PostgreSQL.

Why one place: ``run``, ``status``, ``report`` and ``cancel`` must all read the same store for the
same flags, and nothing of PostgreSQL may be imported unless a ``postgresql://`` store is given
(DESIGN §7) — so the import happens here, and only on that branch.
"""

from __future__ import annotations

from pathlib import Path

from runner.errors import ConfigError
from runner.store.base import Store
from runner.store.owner import OUTAGE_S
from runner.store.sqlite import Journal
from runner.store.storeurl import shown

#: URL schemes of the PostgreSQL backend (libpq accepts both).
POSTGRES = ("postgresql://", "postgres://")


def open_store(
    run_dir: Path,
    *,
    url: str | None = None,
    scope: str = "",
    readonly: bool = False,
    outage_s: float = OUTAGE_S,
) -> Store:
    """The store for ``run_dir``: its journal, or the PostgreSQL at ``url`` (``scope``: the manifest;
    ``outage_s``: how long it may be away under a run before the run gives up on it)."""
    if not url:
        return Journal.open(run_dir, readonly=readonly)
    if not url.startswith(POSTGRES):
        raise ConfigError(f"--store: {shown(url)} is not a postgresql:// URL; without it, journal.sqlite")
    try:
        from runner.store.pgconn import Outage
        from runner.store.postgres import PostgresStore
    except ImportError as exc:  # the 'team' extra was not installed
        raise ConfigError("a postgresql:// store needs psycopg: pip install 'previz-runner[team]'") from exc
    outage = Outage(window_s=outage_s)
    return PostgresStore.open(
        url, scope=scope or run_dir.name, run_dir=run_dir, readonly=readonly, outage=outage
    )
