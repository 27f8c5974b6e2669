"""Ctrl-C: the first stops new submissions and drains, the second stops at once; a rerun resumes."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from tests.engine.helpers import ledger_rows, shot, write_manifest

pytestmark = pytest.mark.anyio


async def _start(manifest: Path) -> asyncio.subprocess.Process:
    argv = ["-m", "runner", "run", str(manifest), "--sim-time-scale", "0.01"]
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=pipe, stderr=pipe)


async def _wait_for_line(proc: asyncio.subprocess.Process, words: str) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, f"process ended before printing {words!r}: {seen}"
        seen.append(line)
        if words in line:
            return seen


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_first_ctrl_c_drains_and_a_rerun_finishes_the_rest(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=8)], concurrency=3, simulate=True)
    proc = await _start(manifest)
    await _wait_for_line(proc, "submitted")
    proc.send_signal(signal.SIGINT)
    code, out, err = await _finish(proc)
    assert code == 130, out + err
    assert "Traceback" not in err
    assert "interrupted" in out
    rows = ledger_rows(tmp_path / "out" / "t")
    assert rows, "the takes in flight at Ctrl-C were drained and recorded"
    assert all(r["status"] == "done" for r in rows)
    assert len(rows) < 8, "no new submissions after the first Ctrl-C"

    again = await _start(manifest)
    code, out, _ = await _finish(again)
    assert code == 0, out
    final = ledger_rows(tmp_path / "out" / "t")
    assert len(final) == 8
    assert len({r["key"] for r in final}) == 8, "no take was done twice"


# The second Ctrl-C (stop at once, journal keeps the tasks, rerun buys nothing) is tested against a
# standalone simulator in tests/crash/test_signals.py, where a run that ignored it would fail.
