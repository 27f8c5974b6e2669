"""The position-tracking YAML loader: positions, duplicate keys, and YAML 1.2 scalars."""

from __future__ import annotations

import pytest

from runner.errors import ManifestError
from runner.manifest.yamlpos import format_loc, load_located


def test_positions_of_values_and_keys_are_one_based() -> None:
    doc = load_located("a: 1\nshots:\n  - id: x\n    seeds: [1, 22]\n", "m.yaml")
    assert doc.values[("a",)] == (1, 4)
    assert doc.keys[("shots", 0, "seeds")] == (4, 5)
    assert doc.values[("shots", 0, "seeds", 1)] == (4, 16)
    assert doc.where(("shots", 0, "missing")) == (3, 5)  # nearest written ancestor: the shot


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: 16:9", "16:9"),
        ("v: 06:30", "06:30"),
        ("v: 2026-05-01", "2026-05-01"),
        ("v: yes", "yes"),
        ("v: off", "off"),
        ("v: 010", "010"),
        ("v: 1e5", "1e5"),
        ("v: true", True),
        ("v: 12", 12),
        ("v: -3", -3),
        ("v: 0x1f", "0x1f"),  # YAML 1.1 and 1.2 read 31; a manifest never means it (issue 22)
        ("v: 0.25", 0.25),
        ("v: 1_000", "1_000"),  # YAML 1.1 reads 1000
        ("v: ~", None),
        ("v: '12'", "12"),
    ],
)
def test_scalars_follow_yaml_1_2(text: str, value: object) -> None:
    assert load_located(text, "m.yaml").data == {"v": value}


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    doc = load_located("a: 1\nb:\n  c: 1\n  c: 2\n", "m.yaml")
    assert doc.data == {"a": 1, "b": {"c": 2}}
    assert [str(p) for p in doc.problems] == ["m.yaml:4:3: b.c: duplicate key 'c' (first given on line 3)"]


def test_merge_keys_override_without_false_duplicates() -> None:
    text = "base: &b {duration: 5, ratio: '4:3'}\nshot:\n  <<: *b\n  duration: 10\nagain:\n  <<: *b\n"
    doc = load_located(text, "m.yaml")
    assert doc.problems == ()
    assert doc.data["shot"] == {"duration": 10, "ratio": "4:3"}
    assert doc.data["again"] == {"duration": 5, "ratio": "4:3"}
    assert doc.values[("shot", "ratio")] == (1, 31)  # where it was written: in the anchor


def test_alias_bomb_is_refused() -> None:
    """Each level repeats the previous one nine times: 10 × 9**6 values, far over the guard."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    with pytest.raises(ManifestError, match="expands to more than"):
        load_located("\n".join(lines), "m.yaml")


def test_unknown_tag_is_a_problem_not_a_crash() -> None:
    doc = load_located("a: !python/object 3\n", "m.yaml")
    assert "cannot read this value" in str(doc.problems[0])


def test_format_loc() -> None:
    assert format_loc(("shots", 1, "seeds", 0)) == "shots[1].seeds[0]"
    assert format_loc(()) == ""
