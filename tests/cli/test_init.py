"""`previz init`: a starter that validates and runs on the simulator at once, from the wheel's data."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from runner.cli.main import main


def test_init_writes_a_starter_that_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "night"
    assert main(["init", str(folder)]) == 0
    manifest = folder / "previz.yaml"
    assert "ratio: auto" in manifest.read_text(encoding="utf-8"), "new manifests follow the plate's shape"
    assert main(["validate", str(manifest)]) == 0
    capsys.readouterr()
    assert main(["run", str(manifest), "--sim-time-scale", "0.01", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["takes"] == {"done": 5}
    assert Path(summary["paths"]["run_dir"]) == folder / "outputs" / "starter"


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 0
    (tmp_path / "previz.yaml").write_text("mine", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "previz.yaml").read_text(encoding="utf-8") == "mine"


@pytest.mark.slow
def test_the_wheel_carries_the_starter_the_templates_and_the_clips(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip()[-200:]}")
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "runner/cli/starter/previz.yaml" in names
    assert any(n.startswith("runner/cli/starter/images/") for n in names)
    assert "runner/reports/templates/report.html.j2" in names
    assert any(n.startswith("runner/simulator/assets/") for n in names)
