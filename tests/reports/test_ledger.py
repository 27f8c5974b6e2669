"""The ledger files (runner/reports/ledger.py): DESIGN §3's columns, written from the journal's rows."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.engine.events import Outcome, TakeEnd
from runner.engine.records import row_of, spec_of
from runner.errors import FailureKind
from runner.manifest.takes import ImageKind, ImageRef, Take
from runner.reports.ledger import LedgerFiles
from runner.store.sqlite import Journal
from tests.providers.helpers import make_take

#: DESIGN §3, verbatim: the ledger's first columns, in this order.
DESIGN_COLUMNS = [
    "run_id",
    "manifest",
    "shot",
    "take",
    "seed",
    "provider",
    "model",
    "task_id",
    "status",
    "failure_kind",
    "failure_message",
    "duration_s",
    "ratio",
    "prompt",
    "image",
    "cost_usd",
    "cost_source",
    "submitted_at",
    "finished_at",
    "generation_s",
    "attempts",
    "output",
    "bytes",
    "sha256",
]
T0 = datetime(2025, 3, 1, 22, 15, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 22, 16, 4, 500000, tzinfo=UTC)


def done(take: Take, **extra: Any) -> Outcome:
    fields: dict[str, Any] = {
        "take": take,
        "status": TakeEnd.DONE,
        "task_id": f"task-{take.shot}-{take.index}",
        "cost_usd": 0.25,
        "cost_source": "reported",
        "submitted_at": T0,
        "finished_at": T1,
        "generation_s": 61.23456,
        "attempts": 1,
        "output": take.relpath,
        "bytes": 123456,
        "sha256": "ab" * 32,
    }
    fields.update(extra)
    return Outcome(**fields)


def failed(take: Take, kind: FailureKind, message: str = "refused") -> Outcome:
    return Outcome(
        take=take,
        status=TakeEnd.FAILED,
        task_id="task-x",
        failure_kind=kind,
        failure_message=message,
        submitted_at=T0,
        finished_at=T1,
        attempts=1,
    )


def write(run_dir: Path, *outcomes: Outcome, run_id: str = "run-1") -> None:
    """What a run does at each take's end: the journal charges the row, the files follow."""
    journal = Journal.open(run_dir)
    ledger = LedgerFiles(run_dir)
    try:
        ledger.sync(journal)  # as app.run_takes does first: rows an earlier kill left out
        journal.plan(
            (o.take.key, o.take.label, o.take.provider, spec_of(o.take), o.take.relpath) for o in outcomes
        )
        for outcome in outcomes:
            row = row_of(outcome, run_id=run_id, manifest="night.yaml")
            journal.charge(outcome.take.key, row, state=outcome.status.value)
            ledger.sync(journal)
    finally:
        ledger.close()
        journal.close()


def csv_rows(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (run_dir / "ledger.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def jsonl_rows(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# -- Ledger ---------------------------------------------------------------------------------------


def test_columns_are_those_of_design_section_3_in_order(tmp_path: Path) -> None:
    write(tmp_path, done(make_take("runway", shot="harbor")))
    header, rows = csv_rows(tmp_path)
    assert header[:24] == DESIGN_COLUMNS
    (row,) = jsonl_rows(tmp_path)
    assert list(row)[:24] == DESIGN_COLUMNS
    assert list(row) == header, "csv and jsonl carry the same columns in the same order"
    assert len(rows) == 1


def test_a_row_says_what_happened(tmp_path: Path) -> None:
    take = make_take("runware", shot="cliff", index=2, seed=77, prompt="Gulls over the cliff")
    write(tmp_path, done(take))
    (row,) = jsonl_rows(tmp_path)
    assert row["run_id"] == "run-1"
    assert row["manifest"] == "night.yaml"
    assert (row["shot"], row["take"], row["seed"], row["provider"]) == ("cliff", 2, 77, "runware")
    assert (row["status"], row["failure_kind"], row["failure_message"]) == ("done", None, None)
    assert (row["duration_s"], row["ratio"], row["prompt"]) == (5, "16:9", "Gulls over the cliff")
    assert (row["cost_usd"], row["cost_source"]) == (0.25, "reported")
    assert row["submitted_at"] == "2025-03-01T22:15:00Z"
    assert row["finished_at"] == "2025-03-01T22:16:04.500000Z"
    assert row["generation_s"] == 61.235
    assert (row["output"], row["bytes"], row["sha256"]) == (take.relpath, 123456, "ab" * 32)
    assert row["key"] == take.key


def test_a_data_uri_image_is_not_copied_into_the_ledger(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + "A" * 5000
    take = make_take("runway")
    data_take = replace(take, image=ImageRef(uri, ImageKind.DATA, content_id="f00d" * 16))
    write(tmp_path, done(data_take))
    (row,) = jsonl_rows(tmp_path)
    assert row["image"].startswith("data:")
    assert "f00df00df00d" in row["image"]
    assert len(row["image"]) < 80


def test_two_ledgers_append_with_one_header(tmp_path: Path) -> None:
    a, b, c = (make_take("runway", shot=s) for s in ("a", "b", "c"))
    write(tmp_path, done(a), failed(b, FailureKind.MODERATION), run_id="first")
    write(tmp_path, done(c), run_id="second")
    text = (tmp_path / "ledger.csv").read_text(encoding="utf-8")
    assert text.count("run_id,manifest,shot") == 1
    _, rows = csv_rows(tmp_path)
    assert [(r["run_id"], r["shot"]) for r in rows] == [("first", "a"), ("first", "b"), ("second", "c")]
    assert [r["shot"] for r in jsonl_rows(tmp_path)] == ["a", "b", "c"]


def test_csv_and_jsonl_agree(tmp_path: Path) -> None:
    prompt = 'A "quoted" prompt, with commas,\nline breaks and ünïcödé'
    outcomes = [
        done(make_take("aimlapi", shot="one", prompt=prompt)),
        failed(make_take("runway", shot="two"), FailureKind.INPUT, "ASSET.INVALID: bad image, 3x3"),
        done(make_take("runware", shot="three"), cost_usd=None, cost_source="estimated", flags=("resumed",)),
    ]
    write(tmp_path, *outcomes)
    _, from_csv = csv_rows(tmp_path)
    from_jsonl = jsonl_rows(tmp_path)
    assert len(from_csv) == len(from_jsonl) == 3
    for c, j in zip(from_csv, from_jsonl, strict=True):
        assert c == {k: "" if v is None else str(v) for k, v in j.items()}
    assert from_jsonl[0]["prompt"] == prompt
    assert from_jsonl[2]["flags"] == "resumed"


# -- the files follow the journal -----------------------------------------------------------------


def test_rows_a_kill_left_out_of_the_files_are_written_next_time(tmp_path: Path) -> None:
    """The journal commits a row, then the process dies before the files are appended."""
    a, b = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, done(a))
    journal = Journal.open(tmp_path)
    journal.plan([(b.key, b.label, b.provider, spec_of(b), b.relpath)])
    journal.charge(b.key, row_of(done(b), run_id="killed", manifest="m"), state="done")
    journal.close()  # ... and no LedgerFiles.sync: the kill
    assert [r["shot"] for r in jsonl_rows(tmp_path)] == ["a"]
    write(tmp_path, run_id="rerun")  # a rerun opens the files and syncs them first
    assert [r["shot"] for r in jsonl_rows(tmp_path)] == ["a", "b"]
    assert [r["shot"] for r in csv_rows(tmp_path)[1]] == ["a", "b"]
    assert [r["seq"] for r in jsonl_rows(tmp_path)] == [1, 2]


def test_a_torn_last_line_is_rewritten_from_the_journal(tmp_path: Path) -> None:
    a, b = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, done(a))
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"run_id": "run-1", "shot": "torn", "st')  # the crash
    write(tmp_path, done(b), run_id="rerun")
    assert [(r["shot"], r["seq"]) for r in jsonl_rows(tmp_path)] == [("a", 1), ("b", 2)]
    assert not list(tmp_path.glob("*.old*")), "nothing but the torn row was lost: no copy kept"


def _journal_rows(run_dir: Path) -> list[dict[str, Any]]:
    journal = Journal.open(run_dir)
    try:
        return [{**row, "seq": seq} for seq, row in journal.rows_after(0)]
    finally:
        journal.close()


#: A prompt whose cell is quoted in the CSV (quotes, commas, a line break): a cut inside it leaves
#: a quoted field open, which swallowed the rows appended after it.
QUOTED = 'A "storm", at night,\nover the harbour'


@pytest.mark.parametrize("cut", [1, 5, 12, 20, 30, 38])
def test_a_csv_torn_inside_a_quoted_field_is_rewritten_whole(tmp_path: Path, cut: int) -> None:
    """A full disk cut the last row of ledger.csv inside its quoted prompt: the next run's
    ledger.csv holds every row of the journal, the same as ledger.jsonl, costs included."""
    a, b, c = (make_take("aimlapi", shot=s, prompt=QUOTED) for s in ("a", "b", "c"))
    write(tmp_path, done(a), done(b))
    path = tmp_path / "ledger.csv"
    text = path.read_text(encoding="utf-8")
    start = text.rindex('"A ""storm""')
    path.write_text(text[: start + cut], encoding="utf-8")  # ENOSPC, mid-row
    write(tmp_path, done(c), run_id="rerun")
    _, rows = csv_rows(tmp_path)
    truth = _journal_rows(tmp_path)
    assert [(r["shot"], r["prompt"], r["cost_usd"], r["seq"]) for r in rows] == [
        (t["shot"], t["prompt"], str(t["cost_usd"]), str(t["seq"])) for t in truth
    ]
    assert len(rows) == 3 and jsonl_rows(tmp_path) == truth


def test_a_ledger_short_of_a_row_in_the_middle_is_rewritten(tmp_path: Path) -> None:
    takes = [make_take(shot=s) for s in ("a", "b", "c")]
    write(tmp_path, *(done(t) for t in takes))
    for name in ("ledger.csv", "ledger.jsonl"):
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines(keepends=True)
        del lines[-2]  # a row lost before the last one
        (tmp_path / name).write_text("".join(lines), encoding="utf-8")
    write(tmp_path, run_id="rerun")
    assert [r["seq"] for r in jsonl_rows(tmp_path)] == [1, 2, 3]
    assert [r["seq"] for r in csv_rows(tmp_path)[1]] == ["1", "2", "3"]


def test_rows_of_another_journal_are_kept(tmp_path: Path) -> None:
    """A ledger holding rows this journal does not know (its journal was lost) is not rewritten;
    torn as well, it is rewritten only after a copy is kept beside it."""
    write(tmp_path, done(make_take(shot="a")), done(make_take(shot="b")))
    (tmp_path / "journal.sqlite").unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / f"journal.sqlite{extra}").unlink(missing_ok=True)
    before = (tmp_path / "ledger.jsonl").read_text(encoding="utf-8")
    write(tmp_path, done(make_take(shot="c")), run_id="new-journal")
    assert (tmp_path / "ledger.jsonl").read_text(encoding="utf-8").startswith(before)
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"shot": "torn", "se')
    torn = (tmp_path / "ledger.jsonl").read_text(encoding="utf-8")
    write(tmp_path, run_id="again")
    assert (tmp_path / "ledger.jsonl.old").read_text(encoding="utf-8") == torn


def test_a_second_charge_of_a_paid_take_costs_nothing(tmp_path: Path) -> None:
    """Paid but not saved, fetched later: the ledger's total stays the bill."""
    take = make_take(shot="a")
    unsaved = failed(take, FailureKind.DOWNLOAD, "disk full")
    unsaved = replace(unsaved, cost_usd=0.25, cost_source="reported", paid_not_saved=True)
    write(tmp_path, unsaved, done(take))
    first, second = jsonl_rows(tmp_path)
    assert (first["status"], first["cost_usd"]) == ("failed", 0.25)
    assert (second["status"], second["cost_usd"]) == ("done", 0.0)
    assert "paid_earlier" in second["flags"]


def test_tags_are_a_column(tmp_path: Path) -> None:
    take = replace(make_take(shot="a"), tags=("act1", "creature"))
    write(tmp_path, done(take))
    (row,) = jsonl_rows(tmp_path)
    assert row["tags"] == "act1;creature"
    assert list(row)[24:27] == ["key", "flags", "tags"]
