"""Inputs that gave a traceback and now give one line, exit 2 (issue 22 point 7, the rest of them).

A path in ``/proc``, a folder where previz writes a file (``run.log``, ``.lock``), ``init`` into
a read-only or full mount, and ledgers with lines previz never writes (``report`` and the
end-of-run ``report.html`` skip and count them, and leave no ``report.html.tmp``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli.main import main
from tests.engine.helpers import shot, write_manifest
from tests.mounts import tmpfs


def _one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [
        line for line in err.strip().splitlines() if not line.endswith(": 1 problem")
    ]  # validate's count
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("command", ["run", "plan", "validate"])
def test_an_output_in_proc_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True, output_dir="/proc/x")
    assert main([command, str(manifest)]) == 2
    _one_line(capsys, "/proc")
    if command == "run":
        assert (
            main(
                [
                    "run",
                    str(write_manifest(tmp_path, [shot("a", "runware")], simulate=True)),
                    "--output",
                    "/proc/x",
                ]
            )
            == 2
        )
        _one_line(capsys, "--output", "cannot create folders in /proc")


@pytest.mark.parametrize("name", ["run.log", ".lock", "ledger.jsonl", "summary.json", "report.html"])
def test_a_folder_where_previz_writes_a_file_is_one_line_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    manifest = write_manifest(tmp_path, [shot("a", "runware")], simulate=True)
    run_dir = tmp_path / "out" / "t"
    (run_dir / name).mkdir(parents=True)
    for command in ("run", "validate", "plan"):
        assert main([command, str(manifest)]) == 2, command
        _one_line(capsys, str(run_dir / name), "move it aside")
    assert sorted(p.name for p in run_dir.iterdir()) == [name], "nothing written beside it"


@pytest.mark.parametrize("where", ["mount", "inside"])
def test_init_into_a_read_only_mount_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    with tmpfs(tmp_path / "ro", "size=1m,ro") as place:
        target = place if where == "mount" else place / "starter"
        assert main(["init", str(target)]) == 2
        _one_line(capsys, str(place), "Read-only file system")


def test_init_onto_a_full_disk_is_one_line_and_leaves_no_half_starter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "small", "size=8k") as place:
        assert main(["init", str(place / "starter")]) == 2
        _one_line(capsys, "No space left on device")
        assert list(place.iterdir()) == [], "what was written is taken back"


def _night(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    manifest = write_manifest(tmp_path, [shot("a", "runware", takes=2)], simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 0
    capsys.readouterr()
    return manifest, tmp_path / "out" / "t"


BAD_LINES = [
    "[1, 2]",
    '"a string"',
    "null",
    "42",
    '{"shot": "a", "cost_usd": "abc"}',
    '{"shot": ["a"], "cost_usd": 0.1}',
    '{"take": "first", "cost_usd": 0.1}',
    '{"cost_usd": true}',
]


def test_report_skips_and_counts_ledger_lines_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = _night(tmp_path, capsys)
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    good = json.loads(capsys.readouterr().out)
    with (run_dir / "ledger.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(BAD_LINES) + "\n")
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert f"{len(BAD_LINES)} ledger lines skipped" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["total"] == good["total"], "the good rows count as before"
    assert not list(run_dir.glob("*.tmp"))


def test_a_ledger_csv_with_a_cost_that_is_not_a_number_is_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = _night(tmp_path, capsys)
    csv_only = tmp_path / "elsewhere" / "ledger.csv"
    csv_only.parent.mkdir()
    text = (run_dir / "ledger.csv").read_text(encoding="utf-8")
    header, first, *rest = text.splitlines()
    cost = header.split(",").index("cost_usd")
    cells = first.split(",")
    cells[cost] = "twelve"
    csv_only.write_text("\n".join([header, ",".join(cells), *rest]) + "\n", encoding="utf-8")
    assert main(["report", str(csv_only)]) == 0
    assert "1 ledger lines skipped" in capsys.readouterr().err
