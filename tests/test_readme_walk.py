"""The README's "Running a real night" commands work as written on a fresh folder (issue 23's walk:
they named a ``harbor.yaml`` nobody had, and ``plan`` needed a key it does not need)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from runner.cli.main import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _night_commands() -> list[list[str]]:
    section = README.split("## Running a real night", 1)[1]
    (block,) = re.findall(r"```sh\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("previz ")]


def test_the_real_night_commands_run_before_any_key_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_API_SECRET", "_BASE_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    commands = _night_commands()
    assert [argv[1] for argv in commands] == ["init", "validate", "plan", "run"]
    for argv in commands[:3]:  # run is the night itself; the starter's run is tested in test_init
        assert main(argv[1:]) == 0, capsys.readouterr().err
    assert "warning" not in capsys.readouterr().err
