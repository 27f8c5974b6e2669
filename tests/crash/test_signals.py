"""Interrupts as a user's night brings them: SIGHUP, a double Ctrl-C, a kill right after the submits.

Each test runs ``previz run`` as a subprocess against a standalone ``previz simulate``, so the
simulator's bill outlives the runner and shows whether anything was bought twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import termios
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.crash import standalone
from tests.crash.standalone import ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02


def _states(run_dir: Path) -> dict[str, int]:
    path = run_dir / "journal.sqlite"
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM takes GROUP BY state").fetchall())
    except sqlite3.DatabaseError:
        return {}
    finally:
        conn.close()


#: A take's states from "submitted" on: a busy machine may see a take pass through quickly.
SUBMITTED_OR_LATER = ("submitted", "succeeded", "done")


def _wait_for_submitted(run_dir: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _states(run_dir)
        if sum(states.get(s, 0) for s in SUBMITTED_OR_LATER) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"never {count} takes submitted: {_states(run_dir)}")


def _start(manifest: Path, url: str, scale: float = SCALE) -> AbstractContextManager[subprocess.Popen[str]]:
    return standalone.started(manifest, url, clock_scale=scale)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_drains_like_sigterm(tmp_path: Path, sig: signal.Signals) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    # 3 s a take: however busy the machine, the signal lands long before the night could end
    with standalone.simulator("clean", time_scale=SCALE, gen_min_s=150, gen_max_s=150) as url:
        with _start(manifest, url) as proc:
            _wait_for_submitted(run_dir, 1)
            proc.send_signal(sig)
            code, out, err = standalone.finish(proc)
        billed = stats(url)
    assert code == 130, out + err
    assert "Traceback" not in err
    rows = ledger(run_dir)
    assert rows and all(r["status"] == "done" for r in rows), "the takes in flight were drained"
    assert len(rows) < 8, "nothing new was submitted after the signal"
    assert billed["providers"]["runware"]["accepted"] == len(rows)


def test_second_ctrl_c_stops_at_once_and_the_rerun_buys_nothing_twice(tmp_path: Path) -> None:
    """Generations of ~6 s (real): a run that ignored the second Ctrl-C would drain for seconds."""
    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=4)], name="night", concurrency=4)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=0.1) as url:
        with _start(manifest, url, scale=0.1) as proc:
            _wait_for_submitted(run_dir, 4)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code, out, err = standalone.finish(proc)
            took = time.monotonic() - stopped_at
        assert code == 130, out + err
        assert "Traceback" not in err
        assert took < 3.0, f"the second Ctrl-C took {took:.1f} s to stop the run"
        assert _states(run_dir).get("submitted") == 4, "the tasks in flight stay in the journal"
        assert ledger(run_dir) == []
        assert not list(run_dir.rglob("*.part"))

        code, out, err = standalone.run(manifest, url, clock_scale=0.1)
        bill = stats(url)
    assert code == 0, out + err
    assert bill["providers"]["runway"]["accepted"] == 4, "the rerun polled the tasks it had, bought none"
    assert len(ledger(run_dir)) == 4
    assert sum(r["cost_usd"] for r in ledger(run_dir)) == pytest.approx(
        bill["providers"]["runway"]["billed_usd"]
    )


def test_runway_killed_right_after_its_submits_pays_nothing_again(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runway", takes=5)], name="night", concurrency=5)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=0.1) as url:
        with _start(manifest, url, scale=0.1) as proc:
            _wait_for_submitted(run_dir, 5)
            proc.kill()
        code, out, err = standalone.run(manifest, url, clock_scale=0.1)
        bill = stats(url)
    assert code == 0, out + err
    assert "picked up from an earlier run" in out or "resumed" in out
    assert bill["providers"]["runway"]["accepted"] == 5
    assert max(bill["submissions_by_take"].values()) == 1
    assert sum(r["cost_usd"] for r in ledger(run_dir)) == pytest.approx(bill["billed_usd"])


def test_cancel_cancels_runway_tasks_and_they_bill_nothing(tmp_path: Path) -> None:
    shots = [shot("a", "runway", takes=3), shot("b", "runware", takes=1)]
    manifest = write_manifest(tmp_path, shots, name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=0.2) as url:
        with _start(manifest, url, scale=0.2) as proc:
            _wait_for_submitted(run_dir, 4)
            proc.kill()
        argv = [sys.executable, "-m", "runner", "cancel", str(manifest)]
        done = subprocess.run(argv, env=standalone.env_for(url), capture_output=True, text=True, timeout=60)
        time.sleep(0.5)
        bill = stats(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("cancelled ")] == [
        "a#t01",
        "a#t02",
        "a#t03",
    ]
    assert "runware cannot cancel a task: 1 takes" in done.stdout
    assert bill["providers"]["runway"]["billed_usd"] == 0.0
    assert _states(run_dir)["cancelled"] == 3
    rows = ledger(run_dir)
    assert [r["status"] for r in rows] == ["cancelled"] * 3
    assert all(r["cost_usd"] == 0.0 for r in rows)


def _ignore_sighup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does before it execs the command


def test_a_run_started_under_nohup_outlives_sighup(tmp_path: Path) -> None:
    """``nohup previz run``: the SIGHUP of a closed terminal stays ignored, every take is made."""
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], name="night", concurrency=3)
    run_dir = tmp_path / "out" / "night"
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--clock-scale", str(SCALE)]
    with standalone.simulator("clean", time_scale=SCALE) as url:
        proc = subprocess.Popen(
            argv,
            env=standalone.env_for(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_ignore_sighup,
        )
        try:
            _wait_for_submitted(run_dir, 1)
            proc.send_signal(signal.SIGHUP)
            code, out, err = standalone.finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        billed = stats(url)
    rows = ledger(run_dir)
    assert code == 0, out + err
    assert "interrupted" not in out + err
    assert len(rows) == 8 and all(r["status"] == "done" for r in rows), rows
    assert len(list((run_dir).rglob("*.mp4"))) == 8
    assert billed["providers"]["runware"]["accepted"] == 8
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(billed["billed_usd"])


# -- a terminal that goes away (issue 24 point 5) ---------------------------------------------------


def _controlling_tty() -> None:
    """What a login shell's child has: its own session, with the pty as controlling terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(master: int, seen: bytes, probe: bytes, timeout: float = 30) -> bytes:
    """Keep the pty drained (a full one blocks the writer) until ``probe`` shows up."""
    deadline = time.monotonic() + timeout
    while probe not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            seen += os.read(master, 65536)
    return seen


@pytest.mark.parametrize("how", ["eio", "session"])
def test_a_terminal_that_goes_away_drains_the_run_to_130(tmp_path: Path, how: str) -> None:
    """Before: closing the SSH session crashed the run (exit 1, ``OSError: [Errno 5]`` from the
    live table). Now the run notices — by the ``EIO`` of its next write, or by the SIGHUP of its
    session — finishes the takes in flight, exits 130, and the rerun buys nothing twice.

    ``eio``: the pty is the run's stdout but not its controlling terminal, so no SIGHUP comes —
    only the failed writes. ``session``: the pty controls the run's session, as over SSH."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=8)], name="night", concurrency=2)
    run_dir = tmp_path / "out" / "night"
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--clock-scale", str(SCALE)]
    # 3 s a take: however busy the machine, the terminal goes long before the night could end
    with standalone.simulator(
        "clean", time_scale=SCALE, gen_min_s=150, gen_max_s=150, aiml_concurrency=8
    ) as url:
        master, slave = os.openpty()
        env = {**standalone.env_for(url), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=_controlling_tty if how == "session" else None,
        )
        os.close(slave)
        try:
            _read_until(master, b"", b"in flight")  # the live view is up
            _wait_for_submitted(run_dir, 1)
            os.close(master)  # the window closes: the terminal hangs up
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        first = stats(url)["providers"]["aimlapi"]["accepted"]
        again, out, err = standalone.run(manifest, url, "--concurrency", "8", clock_scale=SCALE)
        billed = stats(url)
    rows = ledger(run_dir)
    log = (run_dir / "run.log").read_text(encoding="utf-8")
    assert code == 130, log[-2000:]
    assert summary["stopped"] == "interrupted"
    assert first < 8, "it drained: no new submissions after the terminal went"
    if how == "eio":
        assert "the terminal went away" in log
    assert again == 0, out + err
    assert billed["providers"]["aimlapi"]["accepted"] == 8, "nothing bought twice"
    assert [r["status"] for r in rows].count("done") == 8
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(billed["billed_usd"])
