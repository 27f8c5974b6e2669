"""A user's ordinary accidents around a run (issue 24): each a subprocess ``previz run`` on a
standalone simulator, disturbed as a night would disturb it, and the money audited from
``/_sim/stats`` afterwards — billed against the ledger, clips against the takes.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest
from tests.mounts import tmpfs

pytestmark = pytest.mark.slow

SCALE = 0.02


def _wait(what: str, probe: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.01)
    raise AssertionError(f"never {what}")


def _states(run_dir: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{(run_dir / 'journal.sqlite').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM takes GROUP BY state").fetchall())
    finally:
        conn.close()


def test_a_submit_refused_429_and_killed_in_its_retry_wait_is_not_written_off(tmp_path: Path) -> None:
    """AIML answers 429 over one task in flight. The run is killed while two takes wait to resend
    a refused submit: they created nothing, so the rerun submits them — no ``uncertain`` charge.

    The first run's clock is real time, so its retry waits (about 1 s) dwarf a POST and its
    journal commit: the kill lands in the wait, not in a send whose answer is truly unknown."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=3)], name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    knobs = {"aiml_concurrency": 1, "gen_min_s": 30, "gen_max_s": 30}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with standalone.started(manifest, url, clock_scale=1.0) as proc:
            _wait("two submits refused", lambda: stats(url)["providers"]["aimlapi"]["rejected"] >= 2)
            time.sleep(0.3)  # the refusals' rows are committed; the next resend is ≥ 0.75 s away
            proc.kill()
        first = _states(run_dir)
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        bill = stats(url)
    rows = ledger(run_dir)
    charged = sum(r["cost_usd"] for r in rows)
    assert code == 0, out + err
    assert first.get("submitting", 0) == 0, f"refused submits were left as write-ahead rows: {first}"
    assert [r["status"] for r in rows] == ["done"] * 3, rows
    assert not [r for r in rows if "uncertain" in (r.get("flags") or "")], rows
    assert bill["providers"]["aimlapi"]["accepted"] == 3
    assert charged == pytest.approx(bill["billed_usd"]), (
        f"ledger ${charged:.2f}, billed ${bill['billed_usd']:.2f}"
    )


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return data


def test_a_full_disk_stops_the_resends_waiting_too(tmp_path: Path) -> None:
    """The shot's folder holds no clip. The first clip fails "disk full"; the takes waiting to
    resend a submit AIML refused (429 over one task in flight) are not sent again, so nothing is
    bought after "no new submissions" — and the rerun, with room, makes every take once."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=4)], name="night", concurrency=4)
    run_dir = tmp_path / "out" / "night"
    knobs = {"aiml_concurrency": 1, "gen_min_s": 20, "gen_max_s": 20, "clip_bytes": 200_000}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with tmpfs(run_dir / "a", "size=64k"):
            code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
            first = stats(url)["providers"]["aimlapi"]
        assert (code, _summary(run_dir)["stopped"]) == (1, "disk full"), out + err
        again, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
        bill = stats(url)
    rows = ledger(run_dir)
    # Task 1, and at most the one resend that took AIML's only slot the moment task 1 ended, before
    # its clip could fail: the disk cannot be known full sooner. Before the fix: 4 of 4 bought.
    assert first["accepted"] <= 2, f"{first['accepted']} tasks bought for a disk that holds no clip"
    assert again == 0, out2 + err2
    assert bill["providers"]["aimlapi"]["accepted"] == 4, "the paid one fetched, the others made once"
    assert len(list((run_dir / "a").glob("*.mp4"))) == 4
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(bill["billed_usd"])


def test_a_read_only_output_folder_stops_new_submissions(tmp_path: Path) -> None:
    """The shot's folder turns read-only after its first clip: the next clip that cannot be
    written stops new submissions like a full disk; the rerun (writable again) fetches the paid
    clips by task id and buys only the takes never sent."""
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=12)], name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE, clip_bytes=200_000) as url:
        with tmpfs(run_dir / "a", "size=64m") as place:
            with standalone.started(manifest, url, clock_scale=SCALE) as proc:
                _wait("a clip saved", lambda: any(place.glob("*.mp4")))
                subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)
                code, out, err = standalone.finish(proc)
            first = stats(url)["providers"]["runware"]["accepted"]
            unsaved = [r for r in ledger(run_dir) if r["status"] != "done"]
            subprocess.run(["mount", "-o", "remount,rw", str(place)], check=True)
            assert (code, _summary(run_dir)["stopped"]) == (1, "output not writable"), out + err
            again, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
            clips = len(list(place.glob("*.mp4")))
        bill = stats(url)
    assert first < 12, f"all {first} takes were submitted into a read-only folder"
    assert unsaved and all(r["failure_kind"] == "download" and r["cost_usd"] > 0 for r in unsaved)
    assert again == 0, out2 + err2
    assert (bill["providers"]["runware"]["accepted"], clips) == (12, 12)
    assert sum(r["cost_usd"] for r in ledger(run_dir)) == pytest.approx(bill["billed_usd"])


def _usd(cell: str | None) -> float:
    """A cost cell as a spreadsheet reads it: anything but a number counts nothing."""
    try:
        return float(cell or 0)
    except ValueError:
        return 0.0


def _csv_ledger(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "ledger.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_ledger_csv_torn_inside_a_quoted_field_is_rewritten_by_the_next_run(tmp_path: Path) -> None:
    """A full disk cut ledger.csv's last row inside its quoted prompt (ledger.jsonl whole). The
    next run — with nothing left to do — finds the tear and rewrites ledger.csv from the journal:
    its total is the bill again, row for row the same as ledger.jsonl."""
    prompt = 'A "storm", at night, over the harbour'
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=4, prompt=prompt)], name="night")
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE) as url:
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        assert code == 0, out + err
        path = run_dir / "ledger.csv"
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: text.rindex('"A ""storm""') + 12], encoding="utf-8")  # ENOSPC, mid-field
        again, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
        bill = stats(url)
    rows = _csv_ledger(run_dir)
    assert again == 0, out2 + err2
    charged = sum(_usd(r.get("cost_usd")) for r in rows)
    assert charged == pytest.approx(bill["billed_usd"]), (
        f"ledger.csv ${charged:.2f}, billed ${bill['billed_usd']:.2f}"
    )
    assert bill["providers"]["aimlapi"]["accepted"] == 4
    assert [(r["seq"], r["prompt"]) for r in rows] == [(str(r["seq"]), r["prompt"]) for r in ledger(run_dir)]
    assert "ledger.csv was torn or short: rewritten from the journal" in out2 + err2


# -- the files beside the journal, and the journal itself (issue 24 points 1–2) -----------------------


def _audit(run_dir: Path, url: str, provider: str, takes: int) -> None:
    """Every take bought once and saved once, and the ledger's total is the provider's bill."""
    bill = stats(url)
    rows = ledger(run_dir)
    assert bill["providers"][provider]["accepted"] == takes, f"bought {bill['providers'][provider]}"
    assert sorted(r["key"] for r in rows if r["status"] == "done") == sorted({r["key"] for r in rows})
    assert len([r for r in rows if r["status"] == "done"]) == takes, rows
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(bill["billed_usd"])


def test_a_deleted_lock_does_not_let_a_second_run_in(tmp_path: Path) -> None:
    """Before: a deleted ``.lock`` let a second run in and 9 of 13 takes were bought twice. Now
    the journal's owner row refuses it (exit 4, naming the holder) and the first run finishes."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=6)], name="night", concurrency=2)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=20, gen_max_s=20) as url:
        with standalone.started(manifest, url, clock_scale=SCALE) as proc:
            _wait("a task bought", lambda: stats(url)["providers"]["aimlapi"]["accepted"] >= 1)
            (run_dir / ".lock").unlink()
            second, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
            code, out, err = standalone.finish(proc)
        assert (second, code) == (4, 0), out2 + err2 + out + err
        assert "another run of this manifest is going (pid" in err2 and "previz status" in err2
        assert len(err2.strip().splitlines()) == 1, err2
        _audit(run_dir, url, "aimlapi", 6)


def test_a_journal_deleted_mid_run_is_put_back_and_nothing_is_bought_twice(tmp_path: Path) -> None:
    """Before: a deleted journal went unnoticed (exit 0) and the rerun bought every take again.
    Now the run puts it back from its open copy, stops sending (exit 1, one line), and the rerun
    collects what was in flight by task id."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=6)], name="night", concurrency=2)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=20, gen_max_s=20) as url:
        with standalone.started(manifest, url, clock_scale=SCALE) as proc:
            _wait("a task bought", lambda: stats(url)["providers"]["aimlapi"]["accepted"] >= 1)
            (run_dir / "journal.sqlite").unlink()
            code, out, err = standalone.finish(proc)
        assert code == 1, out + err
        assert "was deleted while the run was going: put back" in out + err
        assert (run_dir / "journal.sqlite").is_file() and _states(run_dir), "put back, with its takes"
        first = stats(url)["providers"]["aimlapi"]["accepted"]
        again, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
        assert again == 0, out2 + err2
        assert first < 6, "it stopped sending"
        _audit(run_dir, url, "aimlapi", 6)


def test_a_journal_replaced_mid_run_is_left_alone_and_this_runs_kept_aside(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=6)], name="night", concurrency=2)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=20, gen_max_s=20) as url:
        with standalone.started(manifest, url, clock_scale=SCALE) as proc:
            _wait("a task bought", lambda: stats(url)["providers"]["runware"]["accepted"] >= 1)
            stranger = tmp_path / "other.sqlite"
            sqlite3.connect(stranger).close()
            stranger.rename(run_dir / "journal.sqlite")
            code, out, err = standalone.finish(proc)
        assert code == 1, out + err
        assert "was replaced by another file while the run was going" in out + err
        kept = list(run_dir.glob("journal.sqlite.this-run-*"))
        assert len(kept) == 1 and (run_dir / "journal.sqlite").stat().st_size == 0, "stranger untouched"
        kept[0].rename(run_dir / "journal.sqlite")  # the user's call: this run's journal is true
        again, out2, err2 = standalone.run(manifest, url, clock_scale=SCALE)
        assert again == 0, out2 + err2
        _audit(run_dir, url, "runware", 6)


def test_a_journal_lost_between_runs_is_rebuilt_from_the_ledger(tmp_path: Path) -> None:
    """Before: every take bought again. Now the ended takes come back from ledger.jsonl, and
    the new rows continue its numbering."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=4)], name="night")
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=SCALE) as url:
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        assert code == 0, out + err
        (run_dir / "journal.sqlite").unlink()
        bigger = write_manifest(tmp_path, [shot("a", "aimlapi", takes=5)], name="night")
        again, out2, err2 = standalone.run(bigger, url, clock_scale=SCALE)
        assert again == 0, out2 + err2
        assert "journal.sqlite was missing: rebuilt 4 ended takes from ledger.jsonl" in out2 + err2
        _audit(run_dir, url, "aimlapi", 5)
    assert [r["seq"] for r in ledger(run_dir)] == [1, 2, 3, 4, 5]


# -- an edit after a crash (issue 24 point 3) -------------------------------------------------------


@pytest.mark.parametrize("edit", ["prompt", "removed"])
@pytest.mark.parametrize("provider", ["aimlapi", "runway"])
def test_takes_in_flight_of_an_edited_or_removed_shot_are_still_collected(
    tmp_path: Path, provider: str, edit: str
) -> None:
    """Before: the paid tasks of the old takes stayed in flight in the journal, were never
    downloaded, got no ledger row, and the rerun exited 0. Now they are collected by task id,
    charged and recorded as the manifest's earlier version (flag ``earlier-manifest``)."""
    shots = [shot("a", provider, takes=2), shot("b", provider, takes=1)]
    manifest = write_manifest(tmp_path, shots, name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    knobs = {"gen_min_s": 40, "gen_max_s": 40}
    with standalone.simulator("clean", time_scale=SCALE, **knobs) as url:
        with standalone.started(manifest, url, clock_scale=SCALE) as proc:
            _wait("three tasks bought", lambda: stats(url)["providers"][provider]["accepted"] >= 3)
            _wait("their task ids written", lambda: _states(run_dir).get("submitted", 0) == 3)
            proc.kill()
        edited = [shot("a", provider, takes=2, prompt="a crane shot over the harbour at dusk")]
        if edit == "prompt":
            edited.append(shots[1])
        write_manifest(tmp_path, edited, name="night", concurrency=3)
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        bill = stats(url)
    rows = ledger(run_dir)
    earlier = [r for r in rows if "earlier-manifest" in (r.get("flags") or "")]
    assert code == 0, out + err
    strays = 3 if edit == "removed" else 2  # a's two old takes, and b's when b is gone
    assert len(earlier) == strays and {r["status"] for r in earlier} == {"done"}, rows
    assert all((run_dir / r["output"]).is_file() for r in earlier), "every paid clip saved"
    assert _states(run_dir).keys() <= {"done"}, "nothing left in flight"
    assert bill["providers"][provider]["accepted"] == 3 + 2, "the three paid once, a's new prompt twice"
    assert len([r for r in rows if r["status"] == "done"]) == 3 + 2
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(bill["billed_usd"])
