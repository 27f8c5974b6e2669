"""libyaml composes manifests (runner/manifest/yamlpos.py): it sees exactly what the pure-Python parser sees.

Positions, values, duplicate-key problems and the YAML 1.2 core scalars are compared between the
two loaders on documents that stress them: non-ASCII text before a value (columns count
characters, not bytes), anchors with merge keys, flow collections, block scalars, duplicates.
"""

from __future__ import annotations

import pytest

from runner.errors import ManifestError
from runner.manifest import yamlpos

DOCUMENTS = {
    "unicode": (
        "name: «café» ☕ 😀\nshots:\n  - id: été\n    prompt: 🎥 naïve — 'ratio' 16:9\n"
        "    tags: [🎬, ü]\n    duration: 5\n"
    ),
    "anchors": (
        "defaults: &d\n  duration: 5\n  ratio: '16:9'\nshots:\n"
        "  - <<: *d\n    id: a\n  - {<<: *d, id: b, duration: 10}\n"
    ),
    "scalars": "a: 010\nb: yes\nc: 0x1F\nd: 1.5\ne: .inf\nf: 2026-11-21\ng: ~\nh: 06:30\ni: True\nj: '7'\n",
    "block": "prompt: |\n  line one\n  line two\nother: >-\n  folded\n  text\nlist: [1, 2, [3, 4]]\n",
    "duplicates": "shots:\n  - id: a\n    duration: 5\n    duration: 6\nname: x\nname: y\n",
    "empty": "",
}


@pytest.mark.skipif(yamlpos._CLoader is None, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_libyaml_and_pure_python_agree(name: str) -> None:
    text = DOCUMENTS[name]
    assert yamlpos._CLoader is not None
    fast = yamlpos._load_with(yamlpos._CLoader, text, "m.yaml")
    slow = yamlpos._load_with(yamlpos._Loader, text, "m.yaml")
    assert fast == slow


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    import yaml

    assert (yamlpos._CLoader is not None) == hasattr(yaml, "CSafeLoader")


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a:\n\t- b\n", "a: 1\n---\nb: 2\n", "a: b: c\n", "x: \x07\n"])
def test_syntax_errors_read_as_the_pure_python_parser_words_them(text: str) -> None:
    with pytest.raises(ManifestError) as by_default:
        yamlpos.load_located(text, "m.yaml")
    with pytest.raises(ManifestError) as by_python:
        yamlpos._load_with(yamlpos._Loader, text, "m.yaml")
    assert by_default.value.problems == by_python.value.problems
