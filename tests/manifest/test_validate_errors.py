"""Malformed manifests: each must exit 2 with a problem at the right line:column, in clear words.

The table is the contract for error messages: where the problem is reported (the YAML node the
bad value came from) and the words that tell a TD what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.manifest.conftest import Result

TOP = "version: 1\nname: harbor\nprovider: aimlapi\n"  # lines 1-3
SHOT = "shots:\n  - id: dragon\n    prompt: A dragon\n    image: a.jpg\n"  # lines 4-7
OK = TOP + SHOT
SECOND = "  - id: ice\n    prompt: Ice\n    image: b.png\n"  # lines 8-10 after OK


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    line: int
    column: int
    words: tuple[str, ...]


CASES = [
    Case("yaml-syntax", "version: 1\nname: [harbor\nprovider: aimlapi\n", 3, 9, ("YAML syntax error",)),
    Case("tab-indent", OK + "\t  duration: 5\n", 8, 1, ("YAML syntax error", "spaces, not tabs")),
    Case("duplicate-top-key", OK + "name: harbor2\n", 8, 1, ("duplicate key 'name'", "line 2")),
    Case(
        "duplicate-shot-key", OK + "    duration: 5\n    duration: 10\n", 9, 5, ("duplicate key 'duration'",)
    ),
    Case(
        "duplicate-shot-id",
        OK + "  - id: dragon\n    prompt: B\n    image: a.jpg\n",
        8,
        9,
        ("duplicate shot id 'dragon'", "line 5"),
    ),
    Case(
        "id-case-clash",
        OK + "  - id: Dragon\n    prompt: B\n    image: a.jpg\n",
        8,
        9,
        ("only in letter case",),
    ),
    Case(
        "duration-type", OK + "    duration: five\n", 8, 15, ("shots[0].duration", "whole number", "'five'")
    ),
    Case(
        "prompt-type",
        TOP + "shots:\n  - id: dragon\n    prompt: 5\n    image: a.jpg\n",
        6,
        13,
        ("must be text", "quotes"),
    ),
    Case("shots-type", TOP + "shots:\n  id: dragon\n", 5, 3, ("shots", "must be a list")),
    Case("simulate-type", OK + "simulate: yes\n", 8, 11, ("simulate", "true or false", "'yes'")),
    Case(
        "seed-too-big",
        OK + "    seeds: [1, 4294967296]\n",
        8,
        16,
        ("shots[0].seeds[1]", "out of range", "0…4294967295"),
    ),
    Case("seed-negative", OK + "    seeds: [-1]\n", 8, 13, ("seed -1 is out of range",)),
    Case(
        "prompt-too-long",
        TOP + "shots:\n  - id: dragon\n    prompt: " + "a" * 1001 + "\n    image: a.jpg\n",
        6,
        13,
        ("1001 characters", "at most 1000"),
    ),
    Case(
        "prompt-utf16-runway",
        TOP.replace("aimlapi", "runway") + SHOT.replace("A dragon", "🐉" * 501),
        6,
        13,
        ("1002 UTF-16 code units", "runway allows at most 1000"),
    ),
    Case(
        "duration-aimlapi",
        OK + "    duration: 7\n",
        8,
        15,
        ("shots[0].duration: 7 is not allowed for aimlapi gen4_turbo (allowed: 5, 10)",),
    ),
    Case(
        "duration-runware",
        OK + "    provider: runware\n    duration: 11\n",
        9,
        15,
        ("11 is not allowed for runware gen4_turbo (allowed: 2–10)",),
    ),
    Case(
        "duration-from-defaults",
        TOP + "defaults:\n  duration: 7\n" + SHOT,
        5,
        13,
        ("defaults.duration", "7 is not allowed", "inherited by shots[0] 'dragon'"),
    ),
    Case(
        "ratio", OK + "    ratio: '2:1'\n", 8, 12, ("'2:1' is not allowed", "16:9, 9:16, 4:3, 3:4, 1:1, 21:9")
    ),
    Case("ratio-pixels", OK + "    ratio: 1280:720\n", 8, 12, ("pixel size of 16:9",)),
    Case(
        "last-image-runware",
        OK + "    provider: runware\n    last_image: b.png\n",
        9,
        17,
        ("runware has no last frame", "only with aimlapi"),
    ),
    Case(
        "unknown-provider",
        "version: 1\nname: harbor\nprovider: runwayml\n" + SHOT,
        3,
        11,
        ("unknown provider 'runwayml'", "aimlapi, runware, runway"),
    ),
    Case(
        "unknown-provider-shot",
        OK + "    provider: openai\n",
        8,
        15,
        ("shots[0].provider", "unknown provider"),
    ),
    Case(
        "unknown-model", OK + "    model: gen5\n", 8, 12, ("unknown model 'gen5' for aimlapi", "gen4_turbo")
    ),
    Case(
        "provider-model-id",
        OK + "model: runway/gen4_turbo\n",
        8,
        8,
        ("neutral name gen4_turbo", "unknown model"),
    ),
    Case(
        "bad-name",
        "version: 1\nname: Harbor Night\nprovider: aimlapi\n" + SHOT,
        2,
        7,
        ("not a valid run name", "lowercase letters"),
    ),
    Case(
        "bad-id",
        TOP + "shots:\n  - id: dragon/1\n    prompt: A\n    image: a.jpg\n",
        5,
        9,
        ("not a valid shot id", "letters, digits, '-' and '_'"),
    ),
    Case("version-2", "version: 2\nname: harbor\nprovider: aimlapi\n" + SHOT, 1, 10, ("must be 1, got 2",)),
    Case("version-missing", "name: harbor\nprovider: aimlapi\n" + SHOT, 1, 1, ("version", "is required")),
    Case("seeds-and-takes", OK + "    seeds: [1, 2]\n    takes: 3\n", 9, 12, ("either seeds", "not both")),
    Case("takes-zero", OK + "    takes: 0\n", 8, 12, ("takes", "at least 1, got 0")),
    Case("takes-too-many", OK + "    takes: 101\n", 8, 12, ("at most 100",)),
    Case("budget-zero", OK + "budget_usd: 0\n", 8, 13, ("budget_usd", "more than 0, got 0")),
    Case("budget-negative", OK + "budget_usd: -5.5\n", 8, 13, ("more than 0, got -5.5",)),
    Case("concurrency-zero", OK + "concurrency: 0\n", 8, 14, ("concurrency", "at least 1, got 0")),
    Case("deadline-hour", OK + "deadline: '25:00'\n", 8, 11, ("'25:00' is not", '"HH:MM"', "ISO")),
    Case("deadline-word", OK + "deadline: tomorrow\n", 8, 11, ("'tomorrow' is not",)),
    Case(
        "unknown-top-key",
        OK + "concurency: 3\n",
        8,
        1,
        ("unknown key 'concurency'", "did you mean 'concurrency'"),
    ),
    Case(
        "unknown-shot-key",
        OK + "    durration: 5\n",
        8,
        5,
        ("unknown key 'durration'", "allowed here: id, prompt"),
    ),
    Case("id-in-defaults", TOP + "defaults:\n  id: x\n" + SHOT, 5, 3, ("id cannot be a default",)),
    Case("empty-shots", TOP + "shots: []\n", 4, 8, ("at least one shot",)),
    Case(
        "missing-image",
        TOP + "shots:\n  - id: dragon\n    prompt: A dragon\n",
        5,
        5,
        ("shots[0].image", "required"),
    ),
    Case(
        "missing-prompt",
        TOP + "shots:\n  - id: dragon\n    image: a.jpg\n",
        5,
        5,
        ("shots[0].prompt", "required"),
    ),
    Case(
        "image-missing-file",
        TOP + "shots:\n  - id: d\n    prompt: A\n    image: nope.jpg\n",
        7,
        12,
        ("image nope.jpg not found",),
    ),
    Case(
        "image-fake-png",
        TOP + "shots:\n  - id: d\n    prompt: A\n    image: fake.png\n",
        7,
        12,
        ("not a JPEG, PNG or WebP", "by content"),
    ),
    Case(
        "image-strip",
        TOP + "shots:\n  - id: d\n    prompt: A\n    image: strip.png\n",
        7,
        12,
        ("image strip.png is 3000×1000 (ratio 3.00); allowed width/height ratio 0.5–2",),
    ),
    Case(
        "image-http",
        TOP + "shots:\n  - id: d\n    prompt: A\n    image: http://example.com/a.jpg\n",
        7,
        12,
        ("plain http", "use https"),
    ),
    Case(
        "image-file-url",
        TOP + "shots:\n  - id: d\n    prompt: A\n    image: file:///tmp/a.jpg\n",
        7,
        12,
        ("file:// URLs are not accepted",),
    ),
    Case("repeated-seed", OK + "    seeds: [7, 8, 7]\n", 8, 19, ("seed 7 is listed twice",)),
    Case("empty-file", "", 1, 1, ("file is empty",)),
    Case("top-level-list", "- version: 1\n", 1, 1, ("must be a mapping of keys",)),
    Case("two-documents", OK + "---\nversion: 1\n", 8, 1, ("one YAML document",)),
    # issue 22 points 6 and 10: each was "ok" before
    Case("concurrency-huge", TOP + "concurrency: 100000000\n" + SHOT, 4, 14, ("concurrency", "at most 64")),
    Case("duration-hex", OK + "    duration: 0x5\n", 8, 15, ("shots[0].duration", "whole number", "'0x5'")),
    Case("duration-underscore", OK + "    duration: 1_0\n", 8, 15, ("shots[0].duration", "'1_0'")),
    Case(
        "id-device", TOP + "shots:\n  - id: CON\n    prompt: A\n    image: a.jpg\n", 5, 9, ("Windows device",)
    ),
    Case(
        "id-device-lower", TOP + "shots:\n  - id: lpt9\n    prompt: A\n    image: a.jpg\n", 5, 9, ("device",)
    ),
    Case("output-dev-null", TOP + "output_dir: /dev/null\n" + SHOT, 4, 13, ("output_dir", "not a directory")),
    Case("output-nul", TOP + 'output_dir: "a\\0b"\n' + SHOT, 4, 13, ("output_dir", "NUL")),
    Case("shot-not-mapping", OK + "  - just a string\n", 8, 5, ("shots[1]", "each shot must be a mapping")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_manifest_is_reported_at_its_node(
    case: Case, images: Path, cli: Callable[..., Result]
) -> None:
    manifest = images / "harbor.yaml"
    manifest.write_text(case.text, encoding="utf-8")
    result = cli("validate", str(manifest))
    assert result.code == 2
    assert result.out == ""
    where = f"{manifest}:{case.line}:{case.column}: "
    lines = [line for line in result.err.splitlines() if line.startswith(where)]
    assert lines, f"nothing reported at {case.line}:{case.column}:\n{result.err}"
    assert any(all(word in line for word in case.words) for line in lines), result.err
    assert "Traceback" not in result.err


def test_runway_counts_prompt_in_utf16_units(images: Path, cli: Callable[..., Result]) -> None:
    """501 dragons are 501 characters (fine for aimlapi) but 1002 UTF-16 units (too long for runway)."""
    prompt = "🐉" * 501
    for provider, code in (("aimlapi", 0), ("runway", 2)):
        text = f"version: 1\nname: h\nprovider: {provider}\nshots:\n  - id: d\n    prompt: {prompt}\n"
        text += "    image: a.jpg\n"
        (images / "m.yaml").write_text(text, encoding="utf-8")
        result = cli("validate", str(images / "m.yaml"))
        assert result.code == code, result.err
    assert (
        f"{images / 'm.yaml'}:6:13: shots[0].prompt: is 1002 UTF-16 code units long; runway allows"
        in result.err
    )


def test_every_problem_of_a_file_is_reported_at_once(images: Path, cli: Callable[..., Result]) -> None:
    text = (
        "version: 1\n"
        "name: harbor\n"
        "provider: aimlapi\n"
        "budget_usd: -1\n"  # 4:13
        "shots:\n"
        "  - id: dragon\n"
        "    prompt: A dragon\n"
        "    image: strip.png\n"  # 8:12
        "    duration: 7\n"  # 9:15
        "  - id: dragon\n"  # 10:9
        "    prompt: B\n"
        "    image: a.jpg\n"
        "    seeds: [1, 99999999999]\n"  # 13:16
        "    colour: red\n"  # 14:5
    )
    (images / "many.yaml").write_text(text)
    result = cli("validate", str(images / "many.yaml"))
    assert result.code == 2
    expected = ["4:13: budget_usd", "8:12: shots[0].image", "9:15: shots[0].duration", "10:9: shots[1].id"]
    expected += ["13:16: shots[1].seeds[1]", "14:5: shots[1].colour"]
    problem_lines = result.err.splitlines()[:-1]
    assert [
        line.split(": ", 1)[0].split(":", 1)[1] + ": " + line.split(": ")[1] for line in problem_lines
    ] == expected
    assert result.err.splitlines()[-1] == f"{images / 'many.yaml'}: 6 problems"


def test_unreadable_manifest_is_an_input_error(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("validate", str(tmp_path / "absent.yaml"))
    assert result.code == 2
    assert "cannot read the manifest" in result.err
    assert "Traceback" not in result.err


def test_non_utf8_manifest_names_the_byte(tmp_path: Path, cli: Callable[..., Result]) -> None:
    (tmp_path / "latin1.yaml").write_bytes("version: 1\nname: caf\xe9\n".encode("latin-1"))
    result = cli("validate", str(tmp_path / "latin1.yaml"))
    assert result.code == 2
    assert ":2:10: the file is not UTF-8 text (byte 0xe9)" in result.err
