"""What the journal promises, run by run (issue 7): disk errors, reruns from elsewhere, `_v2`, bad journals.

In-process against the simulator over loopback, so ``/_sim/stats`` can prove that nothing was paid
twice; the subprocess kill and signal tests live in tests/crash/.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.engine.download import Downloaded
from runner.simulator import Simulator
from runner.store.runlock import NOTE
from runner.store.sqlite import FILENAME, Journal, JournalWriteError
from tests.engine.direct import run_engine
from tests.engine.helpers import ledger_rows, run_against, shot, write_manifest

pytestmark = pytest.mark.anyio

RUNWARE_6S = 0.3042


def _accepted(sim: Simulator, provider: str = "runware") -> int:
    accepted: int = sim.stats()["providers"][provider]["accepted"]
    return accepted


def _billed(sim: Simulator) -> float:
    billed: float = sim.stats()["billed_usd"]
    return billed


# -- paid but not saved ----------------------------------------------------------------------------


async def test_a_shot_folder_that_cannot_be_written_fails_that_take_alone(
    sim: Simulator, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("blocked", "runware"), shot("fine", "runware")])
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / "blocked").write_text("a regular file where the shot folder should be")
    summary, _ = await run_against(sim, manifest)
    assert (summary.done, summary.failed) == (1, 1)
    rows = {r["shot"]: r for r in ledger_rows(run_dir)}
    assert rows["blocked"]["failure_kind"] == "download"
    assert "paid but not saved" in rows["blocked"]["failure_message"]
    assert rows["blocked"]["cost_usd"] == pytest.approx(RUNWARE_6S), "the paid cost is in the ledger"
    assert Journal.open(run_dir, readonly=True).records()[rows["blocked"]["key"]].paid_not_saved

    (run_dir / "blocked").unlink()  # the cause removed: the rerun fetches the clip by task id
    again, _ = await run_against(sim, manifest)
    assert (again.done, again.failed, again.resumed) == (1, 0, 1)
    assert _accepted(sim) == 2, "nothing was submitted twice"
    fetched = [r for r in ledger_rows(run_dir) if r["shot"] == "blocked"][-1]
    assert (fetched["status"], fetched["cost_usd"]) == ("done", 0.0)
    assert "paid_earlier" in fetched["flags"]
    assert sum(r["cost_usd"] for r in ledger_rows(run_dir)) == pytest.approx(_billed(sim))
    assert (run_dir / fetched["output"]).read_bytes()[4:8] == b"ftyp"


class FullDisk:
    """A Downloader whose every write fails with ENOSPC, as a full disk's does."""

    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), relpath)


async def test_a_full_disk_stops_new_submissions_and_keeps_the_paid_costs(
    sim: Simulator, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=6)], concurrency=2)
    run = await run_engine(sim, manifest, downloader=FullDisk())
    assert run.summary.stopped == "disk full"
    assert run.summary.done == 0
    assert 0 < run.summary.failed < 6, "the takes in flight end; no new ones start"
    assert run.summary.not_started == 6 - run.summary.failed
    rows = ledger_rows(run.run_dir)
    assert all(r["failure_kind"] == "download" and r["cost_usd"] > 0 for r in rows)
    submitted = _accepted(sim)

    again = await run_engine(sim, manifest)  # space freed
    assert (again.summary.done, again.summary.failed) == (6, 0)
    assert _accepted(sim) == 6, "the paid takes were fetched, only the unstarted ones submitted"
    assert submitted == len(rows)
    assert sum(r["cost_usd"] for r in ledger_rows(run.run_dir)) == pytest.approx(_billed(sim))


@contextmanager
def _small_disk(place: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``place``: a real ENOSPC (root only; skipped elsewhere)."""
    place.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(place)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()}); FullDisk covers it")
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """128 KiB where one shot's clips go."""
    with _small_disk(tmp_path / "out" / "t" / "full", "128k") as place:
        yield place


def _partial_files(folder: Path) -> list[Path]:
    return list(folder.rglob("*.part"))


async def test_a_really_full_disk(sim: Simulator, tmp_path: Path, tiny_disk: Path) -> None:
    (tiny_disk / "ballast").write_bytes(b"\0" * 120 * 1024)
    manifest = write_manifest(tmp_path, [shot("full", "runware", takes=3)], concurrency=3)
    summary, run_dir = await run_against(sim, manifest)
    assert summary.done < 3 and summary.failed >= 1
    assert not _partial_files(tiny_disk), "a failed write leaves no partial clip"
    (tiny_disk / "ballast").unlink()
    again, _ = await run_against(sim, manifest)
    assert again.failed == 0
    assert _accepted(sim) == 3, "nothing billed twice"
    assert sum(r["cost_usd"] for r in ledger_rows(run_dir)) == pytest.approx(_billed(sim))


# -- where things land -----------------------------------------------------------------------------


def test_a_rerun_from_another_directory_finds_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    manifest = write_manifest(project, [shot("a", "runware", takes=2)], simulate=True, output_dir="renders")
    monkeypatch.chdir(project)
    assert main(["run", manifest.name, "--sim-time-scale", "0.01"]) == 0
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # cron starts in $HOME
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    out = capsys.readouterr().out
    assert str(project / "renders" / "t") in out
    assert len(ledger_rows(project / "renders" / "t")) == 2, "nothing resubmitted"
    assert not (elsewhere / "renders").exists()


async def test_an_edited_prompt_never_overwrites_a_paid_clip(sim: Simulator, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", seeds=[5])])
    await run_against(sim, manifest)
    run_dir = tmp_path / "out" / "t"
    first = run_dir / "a" / "a_t01_s5.mp4"
    before = hashlib.sha256(first.read_bytes()).hexdigest()
    manifest.write_text(manifest.read_text().replace("dolly shot", "crane shot"))
    await run_against(sim, manifest)
    assert hashlib.sha256(first.read_bytes()).hexdigest() == before, "the paid clip is untouched"
    second = run_dir / "a" / "a_t01_s5_v2.mp4"
    assert second.exists()
    outputs = [r["output"] for r in ledger_rows(run_dir)]
    assert outputs == ["a/a_t01_s5.mp4", "a/a_t01_s5_v2.mp4"]


# -- journals that cannot be trusted, locks left behind ----------------------------------------------


def _damage(run_dir: Path, damage: str) -> None:
    """A journal.sqlite that cannot be trusted, as users and accidents leave them."""
    path = run_dir / FILENAME
    if damage == "garbage":
        path.write_bytes(b"this is not a database, it is a cry for help" * 100)
        return
    if damage == "empty":  # a full disk, a copy that never finished
        path.write_bytes(b"")
        return
    if damage == "foreign":  # some other program's database, by name
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        conn.close()
        return
    Journal.open(run_dir).close()
    with sqlite3.connect(path) as conn:
        if damage == "newer":
            conn.execute("PRAGMA user_version=99")
        elif damage == "blob":  # a value no previz ever wrote
            conn.execute(
                "INSERT INTO takes (key, label, provider, spec, reserved_usd)"
                " VALUES ('k', 'a', 'runware', '{}', ?)",
                (b"\x00\x01",),
            )
        elif damage == "state":
            conn.execute(
                "INSERT INTO takes (key, label, provider, spec, state)"
                " VALUES ('k', 'a', 'runware', '{}', 'exploded')"
            )
        elif damage == "columns":
            conn.execute("ALTER TABLE takes DROP COLUMN handle")
    conn.close()


DAMAGE_SAYS = {
    "garbage": "not a usable journal",
    "empty": "is empty",
    "foreign": "not a journal previz wrote",
    "newer": "newer previz",
    "blob": "reserved_usd",
    "state": "exploded",
    "columns": "handle",
}


@pytest.mark.parametrize("command", ["run", "plan", "status", "cancel"])
@pytest.mark.parametrize("damage", sorted(DAMAGE_SAYS))
def test_a_journal_that_cannot_be_trusted_is_exit_2_with_one_line_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, command: str
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    _damage(run_dir, damage)
    before = (run_dir / FILENAME).read_bytes()
    target = str(manifest) if command in ("run", "plan") else str(run_dir)
    assert main([command, target]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert FILENAME in err and "Traceback" not in err
    assert DAMAGE_SAYS[damage] in err, err
    assert (run_dir / FILENAME).read_bytes() == before, "the journal is left as it was"
    sqlite_own = {FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm", ".lock"}  # SQLite's and the OS lock's
    assert {p.name for p in run_dir.iterdir()} <= sqlite_own
    assert not (run_dir / "a").exists(), "nothing was run"


def test_a_run_left_by_a_dead_process_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    manifest = write_manifest(tmp_path, [shot("a", "runware"), shot("b", "runware")], simulate=True)
    run_dir = tmp_path / "out" / "t"
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    capsys.readouterr()
    with sqlite3.connect(run_dir / FILENAME) as conn:  # what a SIGKILLed run leaves: its owner row
        conn.execute(
            "INSERT INTO owner (id, token, pid, host, started, beat) VALUES (1, 'gone', ?, ?, ?, 0)",
            (dead.pid, socket.gethostname(), "2026-11-27T23:00:00+00:00"),
        )
    conn.close()
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    out = capsys.readouterr().out
    assert f"took over from a run that is gone (pid {dead.pid} on {socket.gethostname()}" in out
    with sqlite3.connect(run_dir / FILENAME) as conn:
        assert conn.execute("SELECT count(*) FROM owner").fetchone() == (0,), "given back at the end"
    conn.close()
    assert not (run_dir / NOTE).exists(), "the note goes with the run that wrote it"


def test_a_held_lock_names_its_holder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import filelock

    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    run_dir = tmp_path / "out" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / NOTE).write_text(
        json.dumps({"pid": 4242, "host": "render-07", "started": "2026-11-28T01:02:03"})
    )
    with filelock.FileLock(str(run_dir / ".lock")):
        assert main(["run", str(manifest)]) == 4
    err = capsys.readouterr().err
    assert "pid 4242 on render-07, started 2026-11-28T01:02:03" in err


# -- failures from earlier runs still count ---------------------------------------------------------


def test_sticky_failures_of_earlier_runs_keep_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = [shot("fine", "runware"), shot("flagged", "runware", prompt="[sim:moderate] a crowd")]
    manifest = write_manifest(tmp_path, shots, simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 1
    capsys.readouterr()
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "1 takes failed in earlier runs" in out and "--retry-failed" in out
    summary = json.loads((tmp_path / "out" / "t" / "summary.json").read_text())
    assert summary["takes"] == {"done": 1, "failed": 1}
    assert summary["this_run"]["failed_earlier"] == 1


# -- status --------------------------------------------------------------------------------------------


async def test_status_reports_states_and_altered_clips(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=3)])
    await run_against(sim, manifest)
    run_dir = tmp_path / "out" / "t"
    clips = sorted((run_dir / "a").glob("*.mp4"))
    clips[0].unlink()
    data = bytearray(clips[1].read_bytes())
    data[-1] ^= 0xFF
    clips[1].write_bytes(bytes(data))
    assert main(["status", str(manifest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"done": 3}
    assert report["running"] is False
    assert sorted(t["clip"] or "" for t in report["takes"]) == ["", "altered (sha256)", "missing"]
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "2 clips are missing or altered" in text


@pytest.fixture
def tiny_run_dir(tmp_path: Path) -> Iterator[Path]:
    """512 KiB as the whole run directory: the journal itself meets ENOSPC."""
    with _small_disk(tmp_path / "out" / "t", "512k") as place:
        yield place


async def test_a_disk_too_full_for_the_journal_stops_cleanly(
    sim: Simulator, tmp_path: Path, tiny_run_dir: Path
) -> None:
    """Clips and journal share a full disk: the run ends (a clear error or a disk-full stop), and
    the rerun with space pays for nothing twice (Runware: the taskUUID is written ahead)."""
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8, duration=2)], concurrency=4)
    (tiny_run_dir / "ballast").write_bytes(b"\0" * 432 * 1024)  # 440 before the selects table (2 pages)
    try:
        summary, _ = await run_against(sim, manifest)
    except JournalWriteError as exc:
        assert "cannot write the journal" in str(exc)
    else:
        assert summary.done < 8
    (tiny_run_dir / "ballast").unlink()
    for _ in range(2):  # the rerun has room again
        summary, _ = await run_against(sim, manifest)
        if summary.ok:
            break
    assert summary.ok
    assert _accepted(sim) == 8, "no take was paid twice"
    assert sum(r["cost_usd"] for r in ledger_rows(tiny_run_dir)) == pytest.approx(_billed(sim))


async def test_a_missing_clip_is_fetched_again_and_an_altered_one_gets_a_new_name(
    sim: Simulator, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", seeds=[1, 2])])
    await run_against(sim, manifest)
    run_dir = tmp_path / "out" / "t"
    missing, altered = run_dir / "a" / "a_t01_s1.mp4", run_dir / "a" / "a_t02_s2.mp4"
    missing.unlink()
    altered.write_bytes(altered.read_bytes() + b"an artist's edit")
    edited = altered.read_bytes()
    summary, _ = await run_against(sim, manifest)
    assert (summary.done, summary.resumed) == (2, 2)
    assert _accepted(sim) == 2, "fetched by task id: nothing submitted again"
    assert missing.read_bytes()[4:8] == b"ftyp"
    assert altered.read_bytes() == edited, "a changed clip is never overwritten"
    assert (run_dir / "a" / "a_t02_s2_v2.mp4").read_bytes()[4:8] == b"ftyp"
    assert sum(r["cost_usd"] for r in ledger_rows(run_dir)) == pytest.approx(_billed(sim))
