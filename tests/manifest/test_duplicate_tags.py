"""`tags: [a, a]` is a typo, not a choice: a warning naming the file, line and field (issue 23)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runner.manifest.document import load_manifest
from tests.manifest.conftest import Result

BODY = """\
version: 1
name: m
provider: runware
defaults:
  tags: [night, night]
shots:
  - id: a
    prompt: a slow push in
    image: a.jpg
    tags: [act1, hero, act1]
  - id: b
    prompt: a slow pull out
    image: a.jpg
  - id: c
    prompt: the same
    image: a.jpg
    tags:
      - act2
      - act2
"""


def test_a_repeated_tag_is_a_warning_at_the_repeat(images: Path, cli: Callable[..., Result]) -> None:
    path = images / "m.yaml"
    path.write_text(BODY, encoding="utf-8")
    manifest = load_manifest(path)
    said = sorted((w.line, w.column, w.path, w.message) for w in manifest.warnings)
    assert said == [
        (5, 17, "defaults.tags[1]", "duplicate tag 'night' (already defaults.tags[0]); remove one"),
        (10, 24, "shots[0].tags[2]", "duplicate tag 'act1' (already shots[0].tags[0]); remove one"),
        (19, 9, "shots[2].tags[1]", "duplicate tag 'act2' (already shots[2].tags[0]); remove one"),
    ]  # defaults' repeat said once, though shot b inherits it
    result = cli("validate", str(path))
    assert result.code == 0
    lines = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    expected = "shots[0].tags[2]: duplicate tag 'act1' (already shots[0].tags[0]); remove one"
    assert f"warning: {path}:10:24: {expected}" in lines


def test_distinct_tags_warn_about_nothing(images: Path) -> None:
    path = images / "m.yaml"
    path.write_text(
        BODY.replace("night, night", "night")
        .replace("hero, act1", "hero")
        .replace("- act2\n      - act2", "- act2")
    )
    assert load_manifest(path).warnings == ()
