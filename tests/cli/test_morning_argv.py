"""The morning's commands from argv, as a real process: bad input is exit 2 in one line, never a hang.

A selects file that is a FIFO would block ``read()`` forever and ``/dev/zero`` would fill memory;
both are refused by what they are, before a byte is read (``runner.manifest.regular_file``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.store.sqlite import Journal


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "night"
    folder.mkdir()
    Journal.open(folder).close()  # an empty journal: the run directory exists, no take in it
    return folder


def _spawn(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_selects_file_that_is_a_fifo_is_refused_without_waiting(run_dir: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "selects.txt"
    os.mkfifo(fifo)
    done = _spawn("select", str(run_dir), "--from", str(fifo))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"previz: {fifo}: cannot read the selects file (is a named pipe (FIFO), not a regular file)"
    ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_selects_file_that_is_a_device_is_refused(run_dir: Path) -> None:
    done = _spawn("select", str(run_dir), "--from", "/dev/zero")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "character device" in done.stderr


def test_help_names_the_morning_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("select", "export", "reroll"):
        assert f"    {name}" in text, name
    assert "previz reroll night/outputs/starter harbor --takes 4" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["select"],
        ["export", "RUN"],
        ["export", "RUN", "--otio"],
        ["reroll", "RUN", "--takes", "3"],
        ["reroll", "RUN", "a", "--takes", "-1"],
        ["select", "RUN", "--who", ""],
    ],
)
def test_argv_mistakes_are_exit_2_in_one_line(
    argv: list[str], run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(run_dir) if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("previz ") and "--help" in err, err


def test_an_empty_run_has_nothing_to_select_export_or_reroll(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["select", str(run_dir), "a:1"]) == 2
    assert "no shot 'a' in this run (it has no takes yet)" in capsys.readouterr().err
    assert main(["select", str(run_dir)]) == 0, "listing no selects is not an error"
    assert capsys.readouterr().out.startswith("# previz selects:")
    assert main(["export", str(run_dir), "--otio", str(tmp_path / "x.otio")]) == 2
    assert "cannot find the manifest this run was made from" in capsys.readouterr().err
