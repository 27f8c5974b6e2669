"""The studio-wide view of a team store (runner/store/pgstudio.py, runner/reports/studio.py).

``report --store`` is the bill of every manifest and machine (= the sum of their ledgers);
``status --store`` every manifest's takes, money, runs and leases and every account's slots, by
the server's clock. Against the session's throwaway PostgreSQL server, in process.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from runner.cli.main import main
from runner.engine.records import row_of, spec_of
from runner.manifest.takes import Take
from runner.reports.ledger import LedgerFiles
from runner.reports.status import cancel
from runner.reports.studio import bill, view
from runner.store.owner import Owner
from runner.store.pgschema import prepare_database
from runner.store.pgslots import AccountSlots, set_account
from runner.store.postgres import PostgresStore
from tests.providers.helpers import make_take
from tests.reports.test_ledger import done

DAY2 = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)


@contextmanager
def _store(url: str, run_dir: Path, scope: str = "night") -> Iterator[PostgresStore]:
    store = PostgresStore.open(url, scope=scope, run_dir=run_dir)
    try:
        yield store
    finally:
        store.close()


def _plan(store: PostgresStore, *takes: Take) -> None:
    store.plan((t.key, t.label, t.provider, spec_of(t), t.relpath) for t in takes)


def _end(store: PostgresStore, take: Take, *, host: str | None, **extra: Any) -> None:
    """A take's end as a run records it: its row in the store, then the run directory's ledger files."""
    row = row_of(done(take, **extra), run_id="r", manifest="night.yaml")
    if host is None:
        del row["host"]  # a row from a previz before the column
    else:
        row["host"] = host
    store.charge(take.key, row, state="done")
    ledger = LedgerFiles(store.run_dir)
    ledger.sync(store)
    ledger.close()


def _ledger_sum(run_dir: Path) -> float:
    with (run_dir / "ledger.csv").open(newline="", encoding="utf-8") as fh:
        return sum(float(r["cost_usd"] or 0) for r in csv.DictReader(fh))


def _two_machines(url: str, tmp_path: Path) -> None:
    """Ana's and Ben's workstations share night (runway, runware); Ana also ran gorge (aimlapi)."""
    a1, a2, a3 = (make_take("runway", shot="a", index=i) for i in (1, 2, 3))
    r1 = make_take("runware", shot="r")
    g1 = make_take("aimlapi", shot="g")
    with _store(url, tmp_path / "ana" / "night") as ana, _store(url, tmp_path / "ben" / "night") as ben:
        _plan(ana, a1, a2, a3, r1)
        _end(ana, a1, host="ws-ana")
        _end(ben, a2, host="ws-ben", cost_usd=0.5, finished_at=DAY2)
        _end(ben, a3, host=None)  # before the host column: the run directory's host stands
        _end(ana, r1, host="ws-ana", cost_usd=0.125)
    with _store(url, tmp_path / "ana" / "gorge", scope="gorge") as gorge:
        _plan(gorge, g1)
        _end(gorge, g1, host="ws-ana", cost_usd=1.0)


def test_the_bill_is_every_ledger_on_the_store_by_manifest_account_host_day_tag(
    pg_url: str, tmp_path: Path
) -> None:
    prepare_database(pg_url)
    set_account(pg_url, "runway:aaaa", slots=2)  # one runway account: its rows are that account's
    set_account(pg_url, "runware:bbbb", slots=2)
    set_account(pg_url, "runware:cccc", slots=2)  # two runware accounts: a row does not say which
    _two_machines(pg_url, tmp_path)
    found = bill(pg_url)
    ledgers = sum(_ledger_sum(d) for d in (tmp_path / "ana" / "night", tmp_path / "ben" / "night"))
    ledgers += _ledger_sum(tmp_path / "ana" / "gorge")
    assert (
        found["total"]["cost_usd"] == pytest.approx(ledgers) == pytest.approx(0.25 + 0.5 + 0.25 + 0.125 + 1)
    )
    assert found["total"]["takes"] == 5 and found["total"]["done"] == 5
    assert {k: v["cost_usd"] for k, v in found["manifest"].items()} == {"gorge": 1.0, "night": 1.125}
    assert {k: v["takes"] for k, v in found["account"].items()} == {
        "aimlapi": 1,
        "runware": 1,
        "runway:aaaa": 3,
    }
    assert {k: v["cost_usd"] for k, v in found["host"].items()} == {
        "ws-ana": 1.375,
        "ws-ben": 0.5,
        socket.gethostname(): 0.25,
    }
    assert {k: v["takes"] for k, v in found["day"].items()} == {"2025-03-01": 4, "2026-12-08": 1}
    assert found["tag"] == {"(no tag)": found["total"]}
    assert len(found["runs"]) == 3, "one per run directory that saved rows"
    for group in ("manifest", "account", "host", "day"):
        assert sum(b["cost_usd"] for b in found[group].values()) == pytest.approx(found["total"]["cost_usd"])


def test_report_store_in_every_format_and_its_refusals(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_machines(pg_url, tmp_path)
    assert main(["report", "--store", pg_url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["cost_usd"] == 2.125
    assert main(["report", "--store", pg_url, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("group,key,cost_usd") and "manifest,gorge,1.0000" in lines[2]
    assert main(["report", "--store", pg_url, "--format", "md"]) == 0
    assert "## by host" in capsys.readouterr().out
    assert main(["report", "--store", pg_url]) == 0
    out = capsys.readouterr().out
    assert "5 takes, 5 done · $2.1250" in out and "by account" in out
    assert not list(tmp_path.rglob("report.html")), "the store's bill writes no run directory's files"
    assert main(["report", str(tmp_path / "ana" / "night"), "--store", pg_url]) == 2
    assert "not both" in capsys.readouterr().err
    monkeypatch.delenv("PREVIZ_STORE", raising=False)
    assert main(["report"]) == 2
    assert "report needs PATH" in capsys.readouterr().err


def test_status_store_shows_manifests_runs_leases_and_accounts_by_the_servers_clock(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t1, t2, t3 = (make_take("runway", shot="a", index=i) for i in (1, 2, 3))
    me = Owner("tok-ana", os.getpid(), "ws-ana", "2026-12-07T02:00:00+00:00", time.time())
    with _store(pg_url, tmp_path / "ana" / "night") as ana:
        _plan(ana, t1, t2, t3)
        ana.claim(me)
        ana.lease(t1.key, me.token, 30)
        ana.lease(t2.key, me.token, 30)
        ana.lease(t3.key, me.token, 30)
        ana.update(t1.key, state="submitted", handle="task-1")
        _end(ana, t3, host="ws-ana")
        slots = AccountSlots(pg_url, "runway:aaaa", me.token, 4, 30)
        try:
            assert slots.try_take() is not None
            found = view(pg_url)
            assert main(["status", "--store", pg_url]) == 0
            text = capsys.readouterr().out
        finally:
            slots.close()
    (night,) = found["manifests"]
    assert night["manifest"] == "night" and night["takes"] == 3
    assert night["counts"] == {"done": 1, "planned": 1, "submitted": 1}
    assert night["spent_usd"] == 0.25
    (run,) = night["runs"]
    assert (run["host"], run["live"]) == ("ws-ana", True)
    (lease,) = night["leases"]
    assert (lease["host"], lease["takes"]) == ("ws-ana", 2), "the ended take's lease is not shown"
    assert lease["until"] > found["now"] and 0 < lease["left_s"] <= 30
    (account,) = found["accounts"]
    assert (account["account"], account["slots"], account["in_flight"]) == ("runway:aaaa", 4, 1)
    assert account["holders"] == {"ws-ana (night)": 1}
    assert "manifest night: 3 takes (1 done, 1 planned, 1 submitted)" in text
    assert "2 takes leased by ws-ana pid" in text
    assert "account runway:aaaa: 1 of 4 slots in flight — ws-ana (night) 1" in text


def test_status_and_cancel_of_one_manifest_on_the_store(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team run directory has no journal.sqlite: status reads its manifest on the store. Cancel
    leaves a take a live run holds to that run, and cancels nothing it cannot lease."""
    held, free = make_take("runway", shot="a", index=1), make_take("runware", shot="b")
    other = Owner("tok-ben", os.getpid(), "ws-ben", "2026-12-07T02:00:00+00:00", time.time())
    run_dir = tmp_path / "ana" / "night"
    run_dir.mkdir(parents=True)
    with _store(pg_url, tmp_path / "ben" / "night") as ben:
        _plan(ben, held, free)
        ben.claim(other)
        ben.lease(held.key, other.token, 60)
        ben.update(held.key, state="submitted", handle="task-held")
        ben.update(free.key, state="submitted", handle="uuid-free")
    assert main(["status", str(run_dir), "--store", pg_url]) == 0
    assert "takes: 2 submitted" in capsys.readouterr().out
    result = anyio.run(lambda: cancel(run_dir, {}, url=pg_url, scope="night"))
    assert result.held == [held.label] and result.cannot == {"runware": [free.label]}
    assert result.cancelled == []
    (tmp_path / "ana" / "gorge").mkdir()
    assert main(["status", str(tmp_path / "ana" / "gorge"), "--store", pg_url]) == 2
    assert "no takes of manifest 'gorge' on this store" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["status"], ["report"], ["cancel", "night.yaml"]])
def test_a_bad_or_unreachable_store_is_one_line_without_its_password(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREVIZ_STORE", raising=False)
    assert main([*command, "--store", "mysql://ana:hunter22@db/previz"]) == 2
    err = capsys.readouterr().err
    assert "mysql://ana:***@db/previz is not a postgresql:// URL" in err and "hunter22" not in err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("PREVIZ_STORE", f"postgresql://ana:hunter22@127.0.0.1:{port}/previz")
    if command[0] != "cancel":
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot reach the store" in err and "hunter22" not in err


def test_a_database_that_is_not_a_store_yet_is_refused_in_one_line(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--store", pg_url]) == 2
    assert "not a previz store yet" in capsys.readouterr().err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('takes')").fetchone() == (None,), "nothing written"


def test_status_without_target_or_store_says_what_it_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREVIZ_STORE", raising=False)
    assert main(["status"]) == 2
    assert "status needs MANIFEST_OR_RUN_DIR, or --store URL" in capsys.readouterr().err
