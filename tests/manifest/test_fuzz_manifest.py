"""Fuzzing ``previz validate``: a mutated manifest is either fine (0) or bad input (2), never a crash.

Hypothesis starts from a valid manifest that uses every feature (local file, data URI and https
images, seeds and takes, defaults, per-shot provider, last frame) and mutates it: values replaced
by other types, huge or tiny numbers, NaN, unicode and control characters, long strings, deep
nesting; keys deleted, added or wrapped; then, sometimes, the YAML text itself is cut or has text
spliced in. Each example runs the real CLI in-process; an exception escaping ``main`` fails the test
with its traceback, and exit 2 must come with the usual finding format. Derandomized, so CI sees
the same examples every time; about 250 of them take a few seconds.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runner.cli.main import main

_FINDING = re.compile(r"^\S.*:\d+:\d+: ")
_PNG = io.BytesIO()
Image.new("RGB", (64, 36), (10, 20, 30)).save(_PNG, format="PNG")
DATA_URI = "data:image/png;base64," + base64.b64encode(_PNG.getvalue()).decode()


def base_doc(out: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "fuzz",
        "provider": "runware",
        "concurrency": 2,
        "budget_usd": 5.0,
        "deadline": "06:30",
        "output_dir": str(out),
        "defaults": {"duration": 5, "ratio": "16:9", "tags": ["night"]},
        "shots": [
            {"id": "a", "prompt": "Slow push-in", "image": "a.jpg", "seeds": [1, 2], "tags": ["x"]},
            {
                "id": "b",
                "prompt": "Dragon\nrushes in",
                "image": DATA_URI,
                "last_image": "a.jpg",
                "provider": "aimlapi",
                "duration": 10,
                "takes": 2,
            },
            {"id": "c", "prompt": "Ice cavern", "image": "https://example.com/c.jpg", "ratio": "1:1"},
        ],
    }


_ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "a.jpg",
        "/dev/zero",
        "../a.jpg",
        "https://u:p@example.com/a.jpg",
        "http://example.com/a.jpg",
        "data:image/png;base64,AAAA",
        "data:,",
        "\x00",
        "\x1b[31mred",
        "06:30",
        "2026-13-01T00:00",
        "16:9",
        "9:16",
        "gen4_turbo",
        "aimlapi",
        "runway",
        "x" * 5000,
        "İ" * 70,
        "🐉" * 600,
        "\u202e\u200d",
    ]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 5, 10, 11, 100, 101, 2**32, 2**32 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    _ODD_STRINGS,
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


_NEW_VALUES = st.one_of(_VALUES, st.integers(1, 40).map(_nested))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (not the root itself)."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _mutate(doc: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(doc)), label="path")
    parent, last = _parent(doc, path), path[-1]
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]), label="op")
    if op == "replace":
        parent[last] = data.draw(_NEW_VALUES, label="value")
    elif op == "delete":
        del parent[last]
    elif op == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=10), label="key")] = data.draw(_VALUES, label="value")
    else:
        parent.append(data.draw(_VALUES, label="value"))


def _text_edit(text: str, data: st.DataObject) -> str:
    op = data.draw(st.sampled_from(["none", "none", "cut", "splice"]), label="text-op")
    if op == "none" or not text:
        return text
    at = data.draw(st.integers(0, len(text)), label="at")
    if op == "cut":
        return text[:at]
    return text[:at] + data.draw(st.text(max_size=20) | _ODD_STRINGS, label="splice") + text[at:]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    Image.new("RGB", (320, 180), (40, 90, 160)).save(root / "a.jpg")
    return root


def _validate(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, err.getvalue()


def test_the_unmutated_manifest_is_valid(folder: Path) -> None:
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(base_doc(folder / "out"), sort_keys=False), encoding="utf-8")
    assert _validate(path) == (0, "")


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_manifest_is_exit_0_or_2_never_a_crash(folder: Path, data: st.DataObject) -> None:
    doc = copy.deepcopy(base_doc(folder / "out"))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        _mutate(doc, data)
    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=data.draw(st.booleans(), label="unicode"))
    except yaml.YAMLError:
        return  # PyYAML cannot write this document; nothing for the runner to read
    path = folder / "m.yaml"
    path.write_text(_text_edit(text, data), encoding="utf-8")
    code, err = _validate(path)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        lines = err.rstrip("\n").split("\n")
        assert len(lines) == 1 or all(_FINDING.match(line) for line in lines[:-1]), err
