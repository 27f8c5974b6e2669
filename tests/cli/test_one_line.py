"""Our own messages read as one line each: no literal ``\\n`` where a newline was composed.

``cli.one_line`` escapes control characters so that untrusted text (a path, a key, a prompt) cannot
break the one-line-per-problem format; a message previz builds itself with a newline in it came out
as ``…(no key needed)\\n(previz plan --offline …)``. This sweeps the error paths a user meets first.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from runner.cli.main import main
from runner.simulator import Simulator

MANIFEST = """\
version: 1
name: oneline
provider: runware
simulate: false
shots:
  - id: a
    prompt: A harbor at dawn
    image: frame.png
  - id: b
    provider: runway
    prompt: An ice ridge
    image: frame.png
  - id: c
    provider: aimlapi
    prompt: A dragon
    image: frame.png
"""
BROKEN = "version: 1\nname: x\nprovider: runware\nconcurency: 3\nshots:\n  - id: a\n    prompt: p\n"
LIVE_KEY = "sk-live-9f3kQ2mZx7Lw4nTb8vRc1yHd6pEa0sJu5gKiXo3N"


def _keyless() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_SECRET", "_BASE_URL"))}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    Image.new("RGB", (64, 36), "white").save(tmp_path / "frame.png")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_API_SECRET", "_BASE_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


CASES = {
    "run without a key": ({}, ["run", "m.yaml"], 2),
    "plan without a key": ({}, ["plan", "m.yaml"], 0),
    "plan with a base URL refused": (
        {"RUNWARE_API_KEY": LIVE_KEY, "RUNWARE_BASE_URL": "ftp://example.com"},
        ["plan", "m.yaml"],
        2,
    ),
    "run with a base URL refused": (
        {"RUNWARE_API_KEY": LIVE_KEY, "RUNWARE_BASE_URL": "http://example.com"},
        ["run", "m.yaml"],
        2,
    ),
    "plan with a key holding an escape": ({"RUNWARE_API_KEY": LIVE_KEY + "\x1b[2J"}, ["plan", "m.yaml"], 2),
    "validate a broken manifest": ({}, ["validate", "broken.yaml"], 2),
    "plan a broken manifest": ({}, ["plan", "broken.yaml"], 2),
    "status of nothing": ({}, ["status", "nowhere"], 2),
    "bad option": ({}, ["run", "m.yaml", "--concurrency", "zero"], 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_paths_print_no_literal_backslash_n(
    case: str, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env, argv, expected = CASES[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == expected, err
    assert err.strip() or out.strip()
    assert "\\n" not in out + err, err
    assert LIVE_KEY not in out + err


async def run_plan(folder: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        "plan",
        "m.yaml",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=folder,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.anyio
async def test_two_refused_keys_are_one_line(sim: Simulator, folder: Path) -> None:
    """Two providers refusing their keys at pre-flight: one line naming both variables."""
    env = _keyless() | {
        name: sim.base_url for name in ("RUNWARE_BASE_URL", "RUNWAYML_BASE_URL", "AIMLAPI_BASE_URL")
    }
    env |= {
        "RUNWARE_API_KEY": sim.keys["runware"],
        "RUNWAYML_API_SECRET": LIVE_KEY,
        "AIMLAPI_API_KEY": LIVE_KEY,
    }
    code, err = await run_plan(folder, env)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "RUNWAYML_API_SECRET" in lines[0] and "AIMLAPI_API_KEY" in lines[0]
    assert "\\n" not in err and LIVE_KEY not in err


# --- the project's own manifests run clean -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("manifest", ["manifests/demo.yaml", "init"])
def test_the_demo_and_the_starter_plan_without_a_warning(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make demo`'s manifest and `previz init`'s starter warn about nothing (a demo must run clean)."""
    if manifest == "init":
        assert main(["init", str(tmp_path / "night")]) == 0
        path = tmp_path / "night" / "previz.yaml"
    else:
        path = ROOT / manifest
    capsys.readouterr()
    assert main(["plan", "--offline", str(path)]) == 0
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "plan for" in out
    assert "warning" not in err.lower(), err
