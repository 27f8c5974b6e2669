"""Ledger and History (runner/ledger.py): the columns of DESIGN §3, appends, and what a rerun skips."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.errors import FailureKind
from runner.events import Event, Kind, Outcome, TakeStatus
from runner.ledger import History, Ledger
from runner.takes import ImageKind, ImageRef, Take
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
        "status": TakeStatus.DONE,
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
        status=TakeStatus.FAILED,
        task_id="task-x",
        failure_kind=kind,
        failure_message=message,
        submitted_at=T0,
        finished_at=T1,
        attempts=1,
    )


def write(run_dir: Path, *outcomes: Outcome, run_id: str = "run-1") -> None:
    ledger = Ledger(run_dir, run_id=run_id, manifest="night.yaml")
    try:
        for outcome in outcomes:
            ledger(Event(Kind.FINISHED, outcome.take, outcome=outcome))
    finally:
        ledger.close()


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


def test_only_finished_events_make_rows(tmp_path: Path) -> None:
    take = make_take()
    ledger = Ledger(tmp_path, run_id="r", manifest="m.yaml")
    for kind in (Kind.SUBMITTING, Kind.SUBMITTED, Kind.STATUS, Kind.DOWNLOADING, Kind.RETRYING):
        ledger(Event(kind, take))
    ledger(Event(Kind.FINISHED, take))  # no outcome: nothing to record
    ledger.close()
    assert ledger.rows == 0
    assert jsonl_rows(tmp_path) == []
    assert csv_rows(tmp_path)[1] == []


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


# -- History --------------------------------------------------------------------------------------


def test_history_of_an_empty_directory_knows_nothing(tmp_path: Path) -> None:
    history = History.load(tmp_path / "never-ran")
    take = make_take()
    assert not history.done(take)
    assert history.sticky_failure(take) is None
    assert history.next_attempt(take) == 1
    assert history.done_keys() == set()


def test_history_skips_done_takes(tmp_path: Path) -> None:
    ok, flaky = make_take(shot="ok"), make_take(shot="flaky")
    write(tmp_path, done(ok), failed(flaky, FailureKind.PROVIDER))
    history = History.load(tmp_path)
    assert history.done(ok)
    assert not history.done(flaky)
    assert history.done_keys() == {ok.key}


@pytest.mark.parametrize(
    ("kind", "sticky"),
    [
        (FailureKind.MODERATION, True),
        (FailureKind.INPUT, True),
        (FailureKind.PROVIDER, False),
        (FailureKind.TIMEOUT, False),
        (FailureKind.DOWNLOAD, False),
        (FailureKind.AUTH, False),
        (FailureKind.UNCERTAIN, False),
    ],
)
def test_only_moderation_and_input_failures_are_sticky(
    tmp_path: Path, kind: FailureKind, sticky: bool
) -> None:
    take = make_take()
    write(tmp_path, failed(take, kind))
    history = History.load(tmp_path)
    assert history.sticky_failure(take) == (kind.value if sticky else None)
    assert not history.done(take)


def test_the_last_row_decides_stickiness_and_done_wins(tmp_path: Path) -> None:
    take, other = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, failed(take, FailureKind.MODERATION), failed(other, FailureKind.MODERATION))
    write(tmp_path, failed(take, FailureKind.PROVIDER), done(other))
    history = History.load(tmp_path)
    assert history.sticky_failure(take) is None, "retried and failed differently: a rerun may retry it"
    assert history.done(other) and history.sticky_failure(other) is None


def test_next_attempt_counts_rows(tmp_path: Path) -> None:
    take, fresh = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, failed(take, FailureKind.PROVIDER))
    write(tmp_path, failed(take, FailureKind.TIMEOUT))
    history = History.load(tmp_path)
    assert history.next_attempt(take) == 3
    assert history.next_attempt(fresh) == 1


def test_a_torn_last_jsonl_line_is_ignored(tmp_path: Path) -> None:
    a, b = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, done(a))
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"key": b.key, "status": "done"})[:20])  # crash mid-write
    history = History.load(tmp_path)
    assert history.done(a)
    assert not history.done(b)
    assert history.next_attempt(b) == 1


def test_rows_that_are_not_take_rows_are_ignored(tmp_path: Path) -> None:
    a = make_take(shot="a")
    write(tmp_path, done(a))
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('["a list"]\n{"status": "done"}\n{"key": 7, "status": "done"}\n\n')
    history = History.load(tmp_path)
    assert history.done_keys() == {a.key}


def test_a_row_written_after_a_torn_line_is_still_read(tmp_path: Path) -> None:
    a, b = make_take(shot="a"), make_take(shot="b")
    write(tmp_path, done(a))
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"run_id": "run-1", "shot": "torn", "st')  # the crash
    write(tmp_path, done(b), run_id="rerun")
    history = History.load(tmp_path)
    assert history.done(a)
    assert history.done(b)
