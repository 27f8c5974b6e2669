"""What the PostgreSQL store adds to the contract: scopes, migrations, a secret URL, a restart.

Against a real server (the session's throwaway cluster), never a mock.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from runner.store.base import JournalError
from runner.store.pgschema import SCHEMA_VERSION
from runner.store.postgres import PostgresStore
from runner.store.records import Money
from runner.store.storeurl import shown
from tests.pgcluster import Cluster


def _plan(store: PostgresStore, *keys: str) -> None:
    store.plan((k, f"s#{k}", "runway", {"shot": "s"}, f"s/s_{k}.mp4") for k in keys)


def test_two_manifests_in_one_database_keep_their_takes_and_money_apart(pg_url: str, tmp_path: Path) -> None:
    harbor = PostgresStore.open(pg_url, scope="harbor", run_dir=tmp_path / "harbor")
    gorge = PostgresStore.open(pg_url, scope="gorge", run_dir=tmp_path / "gorge")
    _plan(harbor, "a", "b")
    _plan(gorge, "a")
    harbor.reserve("a", 1, 0.5, lambda _m: None)
    gorge.charge("a", {"shot": "s", "cost_usd": 0.25}, state="done")
    assert set(harbor.records()) == {"a", "b"} and set(gorge.records()) == {"a"}
    assert harbor.money() == Money(0.0, 0.5) and gorge.money() == Money(0.25, 0.0)
    assert harbor.get("a").output == gorge.get("a").output == "s/s_a.mp4", "clip names are per manifest"
    harbor.close()
    gorge.close()


def test_machines_starting_together_migrate_once(pg_url: str, tmp_path: Path) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start(n: int) -> None:
        try:
            opened.append(PostgresStore.open(pg_url, scope=f"m{n}", run_dir=tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(opened) == 6
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM previz_schema ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
    for store in opened:
        store.close()


def test_the_urls_password_is_never_shown(pg_cluster: Cluster, tmp_path: Path) -> None:
    secret = "pw-Zq8xL1vT0mK4sR7n"
    url = f"postgresql://previz:{secret}@127.0.0.1:{pg_cluster.port}/no_such_database"
    assert secret not in shown(url) and "***" in shown(url)
    with pytest.raises(JournalError) as caught:
        PostgresStore.open(url, scope="harbor", run_dir=tmp_path)
    message = str(caught.value)
    assert secret not in message and "no_such_database" in message and "\n" not in message


def test_an_unreachable_server_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(JournalError) as caught:
        PostgresStore.open("postgresql://previz@127.0.0.1:1/x", scope="harbor", run_dir=tmp_path)
    assert "127.0.0.1:1" in str(caught.value) and "cannot reach the store" in str(caught.value)


def test_a_newer_store_is_refused_and_left_alone(pg_url: str, tmp_path: Path) -> None:
    PostgresStore.open(pg_url, scope="harbor", run_dir=tmp_path).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO previz_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(JournalError, match="newer previz"):
        PostgresStore.open(pg_url, scope="harbor", run_dir=tmp_path)


def test_a_restarted_server_is_reconnected_and_loses_nothing_committed(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    """Before runner.store.pgconn the write after a restart failed (the run stopped); now the
    connection comes back and the write goes through once."""
    store = PostgresStore.open(pg_url, scope="harbor", run_dir=tmp_path)
    _plan(store, "a", "b")
    store.charge("a", {"shot": "s", "cost_usd": 0.25}, state="done")
    pg_cluster.restart()
    store.charge("b", {"shot": "s", "cost_usd": 0.25}, state="done")
    assert store.connection.reconnects == 1
    store.close()
    again = PostgresStore.open(pg_url, scope="harbor", run_dir=tmp_path)
    assert again.money() == Money(0.5, 0.0) and again.get("b").state == "done"
    assert len(again.row_seqs()) == 2
    again.close()
