"""Budget and deadline: the gate every new submission passes (DESIGN §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.engine.gate import Gate, StopReason
from runner.manifest.takes import ImageKind, ImageRef, Take
from runner.store.records import Money
from runner.store.sqlite import Journal
from tests.engine.helpers import ledger_rows, shot, write_manifest

RUNWARE_6S = 0.3042  # the price table's estimate and the simulator's bill for a 6 s Runware clip


def _take(n: int, duration: int = 6) -> Take:
    image = ImageRef(
        source="https://example.com/a.jpg", kind=ImageKind.URL, content_id="https://example.com/a.jpg"
    )
    return Take(
        shot="s", index=n, seed=n, provider="runware", model="gen4_turbo", prompt="p", image=image,
        last_image=None, duration=duration, ratio="16:9", tags=(), key=f"k{n}",
    )  # fmt: skip


def _journal(run_dir: Path, *takes: Take) -> Journal:
    journal = Journal.open(run_dir)
    journal.plan((t.key, t.label, t.provider, {}, t.relpath) for t in takes)
    return journal


def test_reservations_are_checked_and_held_in_the_journal(tmp_path: Path) -> None:
    gate = Gate(budget_usd=1.0, deadline=None)
    takes = [_take(n) for n in range(1, 5)]
    journal = _journal(tmp_path, *takes)
    for take in takes[:3]:
        assert journal.reserve(take.key, 1, RUNWARE_6S, partial(gate.check, RUNWARE_6S)) is None
    assert journal.money().reserved_usd == pytest.approx(3 * RUNWARE_6S)
    refusal = journal.reserve(takes[3].key, 1, RUNWARE_6S, partial(gate.check, RUNWARE_6S))
    assert refusal is not None and refusal.reason is StopReason.BUDGET
    assert "budget $1.00" in refusal.message
    assert journal.get(takes[3].key).state == "planned", "a refusal writes nothing"
    journal.close()
    again = Journal.open(tmp_path)  # a kill: the reservations are still there
    assert again.money().reserved_usd == pytest.approx(3 * RUNWARE_6S)


def test_a_charge_turns_the_reservation_into_the_cost(tmp_path: Path) -> None:
    take = _take(1)
    journal = _journal(tmp_path, take)
    journal.reserve(take.key, 1, RUNWARE_6S, lambda _money: None)
    journal.charge(take.key, {"cost_usd": 0.1}, state="done")
    money = journal.money()
    assert money.spent_usd == pytest.approx(0.1)
    assert money.reserved_usd == 0.0


def test_spend_of_earlier_runs_counts(tmp_path: Path) -> None:
    gate = Gate(budget_usd=1.0, deadline=None)
    assert gate.check(RUNWARE_6S, Money(spent_usd=0.8, reserved_usd=0.0)) is not None
    assert gate.check(RUNWARE_6S, Money(spent_usd=0.5, reserved_usd=0.0)) is None
    assert gate.check(RUNWARE_6S, Money(spent_usd=0.5, reserved_usd=0.3)) is not None


def test_deadline_refuses_after_the_time() -> None:
    now = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    gate = Gate(budget_usd=None, deadline=now + timedelta(minutes=30), now=lambda: now)
    assert gate.check(RUNWARE_6S, Money(0.0, 0.0)) is None
    late = Gate(budget_usd=None, deadline=now, now=lambda: now)
    refusal = late.check(RUNWARE_6S, Money(0.0, 0.0))
    assert refusal is not None and refusal.reason is StopReason.DEADLINE


def test_budget_stops_the_run_with_exit_3_and_holds_across_reruns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], concurrency=2, simulate=True)
    argv = ["run", str(manifest), "--sim-time-scale", "0.01", "--budget", "1.00"]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert "stopped by the budget" in out
    rows = ledger_rows(tmp_path / "out" / "t")
    assert 0 < len(rows) < 8
    assert sum(r["cost_usd"] for r in rows) <= 1.00
    assert main(argv) == 3, "the second run must count what the first one spent"
    assert len(ledger_rows(tmp_path / "out" / "t")) == len(rows)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01", "--budget", "5"]) == 0
    assert len(ledger_rows(tmp_path / "out" / "t")) == 8


def test_past_deadline_submits_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=2)], simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01", "--deadline", past]) == 3
    assert "deadline" in capsys.readouterr().out
    assert not (tmp_path / "out" / "t" / "a").exists()


def test_bad_budget_or_deadline_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    assert main(["run", str(manifest), "--budget", "0"]) == 2
    assert main(["run", str(manifest), "--deadline", "25:99"]) == 2
    err = capsys.readouterr().err
    assert "--budget" in err and "25:99" in err and "Traceback" not in err
