"""The one-pass reader (runner/manifest/yamlfast.py) answers exactly as the general path, or not at all.

"The general path" is what :func:`runner.manifest.guard.compose_guarded` did before the one-pass
reader existed: the guard, then :func:`runner.manifest.yamlpos.load_located`. Every document here is either
read by both to the same data, positions, keys and problems, or handed back (None).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.manifest import yamlpos
from runner.manifest.guard import MAX_DEPTH, check_structure, compose_guarded
from runner.manifest.yamlfast import read_plain

pytestmark = pytest.mark.skipif(yamlpos._CLoader is None, reason="PyYAML built without libyaml")

PLAIN = {
    "manifest": (
        "version: 1\nname: night\nprovider: runware\ndefaults:\n  duration: 5\n  ratio: '16:9'\n"
        "shots:\n  - id: a\n    prompt: A slow push-in\n    image: a.jpg\n    seeds: [1, 2]\n"
        "  - {id: b, prompt: 'x', image: b.png, takes: 2}\n"
    ),
    "unicode": (
        "name: «café» ☕ 😀\nshots:\n  - id: été\n    prompt: 🎥 naïve — 'ratio' 16:9\n    tags: [🎬, ü]\n"
    ),
    "scalars": (
        "a: 010\nb: yes\nc: 0x1F\nd: 1.5\ne: .inf\nf: 2026-11-21\ng: ~\nh: 06:30\n"
        "i: True\nj: '7'\nk:\nl: -.5\n"
    ),
    "block": "prompt: |\n  line one\n  line two\nother: >-\n  folded\n  text\nlist: [1, 2, [3, 4]]\n",
    "duplicates": "shots:\n  - id: a\n    duration: 5\n    duration: 6\nname: x\nname: y\nname: z\n",
    "flow duplicates": "a: {b: 1, b: 2}\nc: [{d: 1}, {d: 2, d: {e: 1}}]\n",
    "duplicate replaces a mapping": "a:\n  b: 1\n  c: 2\na: 3\n",
    "odd keys": "5: five\n~: null key\n'<<': quoted merge\ntrue: yes\n'': empty\n1.5: x\n",
    "root list": "- 1\n- [a, {b: c}]\n",
    "root scalar": "just text\n",
    "root null": "~\n",
    "explicit document": "%YAML 1.1\n---\na: 1\n...\n",
    "empty collections": "a: {}\nb: []\nc: [[], {}]\n",
    "multiline plain": "a: one\n  two\n  three\nb: 'single ''quoted'''\nc: \"double\\tescaped\"\n",
    "comments": "# top\na: 1 # after\n# between\nb:\n  - x # item\n",
}

GENERAL = {
    "anchor": "a: &x 1\nb: 2\n",
    "alias": "a: &x 1\nb: *x\n",
    "merge": "d: &d {x: 1}\ne:\n  <<: *d\n  y: 2\n",
    "merge without anchor": "e:\n  <<: {x: 1}\n  y: 2\n",
    "tag": "a: !!str 5\n",
    "non-specific tag": "a: ! 5\n",
    "local tag": "a: !thing 5\n",
    "value key": "=: 1\n",
    "value as a value": "a: =\n",
    "list as key": "? [a, b]\n: 1\n",
    "mapping as key": "? {a: b}\n: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "empty": "",
    "only a comment": "# nothing\n",
    "syntax error": "a: [1, 2\n",
    "tab": "a:\n\t- b\n",
    "control character": "x: \x07\n",
    "too deep": "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
}


def general(text: str) -> yamlpos.Located:
    check_structure(text, "m.yaml")
    return yamlpos.load_located(text, "m.yaml")


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_documents_are_read_in_one_pass_as_the_general_path_reads_them(name: str) -> None:
    text = PLAIN[name]
    fast = read_plain(text, "m.yaml", MAX_DEPTH)
    assert fast is not None
    assert fast == general(text)


@pytest.mark.parametrize("name", sorted(GENERAL))
def test_anything_else_is_left_to_the_general_path(name: str) -> None:
    assert read_plain(GENERAL[name], "m.yaml", MAX_DEPTH) is None


def test_depth_at_the_limit_is_still_plain() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert read_plain(text, "m.yaml", MAX_DEPTH) == general(text)


def test_without_libyaml_the_general_path_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlpos, "_CLoader", None)
    assert read_plain(PLAIN["manifest"], "m.yaml", MAX_DEPTH) is None
    assert compose_guarded(PLAIN["manifest"], "m.yaml") == general(PLAIN["manifest"])


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["16:9", "06:30", "010", "yes", "0x1F", "~", "<<", "=", "1e5", ".inf", "-", "a: b"]),
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=_DATA, flow=st.sampled_from([None, True, False]), repeat=st.integers(0, 5))
def test_one_pass_agrees_with_the_general_path(data: Any, flow: bool | None, repeat: int) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    lines = text.splitlines(keepends=True)
    if repeat and lines:  # a line written twice makes duplicate keys (or a syntax error)
        lines.insert(repeat % len(lines), lines[repeat % len(lines)])
    text = "".join(lines)
    fast = read_plain(text, "m.yaml", MAX_DEPTH)
    if fast is not None:
        assert fast == general(text)
