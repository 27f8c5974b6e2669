"""The README's and docs/'s examples are run, so they cannot go stale; their links resolve."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.engine.records import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = {"README.md": README} | {f"docs/{p.name}": p.read_text(encoding="utf-8") for p in DOCS}
PLACEHOLDER_ROOT = "/path/to/previz-runner"


def _console_examples() -> list[tuple[str, list[str], int]]:
    """(command, expected output lines, exit code) for every `$ previz …` in ```console blocks."""
    examples: list[tuple[str, list[str], int]] = []
    blocks = [b for text in PAGES.values() for b in re.findall(r"```console\n(.*?)```", text, flags=re.S)]
    for block in blocks:
        command, code = "", 0
        expected: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    examples.append((command, expected, code))
                command, expected, code = line[2:], [], 0
            elif m := re.fullmatch(r"\[exit (\d+)\]", line):
                code = int(m.group(1))
            else:
                expected.append(line)
        if command:
            examples.append((command, expected, code))
    return examples


EXAMPLES = _console_examples()


def test_readme_has_console_examples() -> None:
    assert len(EXAMPLES) >= 2


def test_the_readme_fits_a_few_screens_and_links_the_long_reference() -> None:
    assert len(README.splitlines()) <= 230, "the long sections belong in docs/"
    for page in ("how-a-run-works", "reliability", "performance", "manifest", "architecture"):
        assert f"docs/{page}.md" in README


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_relative_link_resolves(page: str) -> None:
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", PAGES[page]):
        assert (base / target).exists(), f"{page} links {target}, which does not exist"


@pytest.mark.parametrize(("command", "expected", "code"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_console_example_output_is_current(
    command: str,
    expected: list[str],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = shlex.split(command)
    assert argv[0] == "previz"
    monkeypatch.chdir(ROOT)
    assert main(argv[1:]) == code
    captured = capsys.readouterr()
    got = (captured.out + captured.err).replace(str(ROOT), PLACEHOLDER_ROOT).splitlines()
    assert got == expected


def test_quick_start_commands_are_the_ones_ci_and_make_run() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make demo" in quick and "make test" in quick
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo_recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "previz run manifests/demo.yaml" in demo_recipe
    assert "previz run manifests/demo.yaml" in quick
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_ledger_columns_in_readme_match_the_code() -> None:
    listed = README.split("Ledger columns, in this order: ", 1)[1].split("`, then", 1)[0]
    names = [n.strip(" `\n") for n in listed.replace("\n", " ").split(",")]
    assert tuple(names) == COLUMNS[: len(names)]
    assert len(names) == 24


def test_the_demo_runs_to_completion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code = main(["run", "manifests/demo.yaml", "--output", str(tmp_path), "--sim-time-scale", "0.01"])
    assert code == 0
    clips = sorted(p.name for p in (tmp_path / "demo").rglob("*.mp4"))
    assert len(clips) == 8
    assert all(p.read_bytes()[4:8] == b"ftyp" for p in (tmp_path / "demo").rglob("*.mp4"))
