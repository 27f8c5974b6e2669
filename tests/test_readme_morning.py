"""The README's "The morning" commands work as written, on the demo's run (issue 20's done-when)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import opentimelineio as otio
import pytest

from runner.cli.main import main
from runner.manifest.document import load_manifest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _morning_commands() -> list[list[str]]:
    section = README.split("## The morning", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("previz ")]


def test_the_four_morning_commands_run_on_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _morning_commands()
    assert [argv[1] for argv in commands] == ["report", "select", "export", "reroll"]
    monkeypatch.chdir(ROOT)
    assert main(["run", "manifests/demo.yaml", "--output", str(tmp_path), "--sim-time-scale", "0.01"]) == 0
    run_dir = tmp_path / "demo"
    for argv in commands:
        given = [a.replace("outputs/demo", str(run_dir)) for a in argv[1:]]
        assert main(given) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    clips = list(otio.adapters.read_from_file(str(run_dir / "selects.otio")).find_clips())
    assert [c.name for c in clips] == ["harbor-dawn#t02", "glasshouse#t01"], "manifest order"
    assert (run_dir / "selects.edl").read_text(encoding="utf-8").count(" V     C ") == 2
    reroll = load_manifest(run_dir / "reroll.yaml")
    assert reroll.name == "demo-reroll" and len(reroll.shots[0].take_seeds()) == 4
    assert str(run_dir / "reroll.yaml") in out, "the reroll's path is printed"
