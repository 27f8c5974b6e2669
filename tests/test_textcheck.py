"""Control characters (runner/manifest/textcheck.py): the regex must find exactly Unicode's category Cc."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from runner.textcheck import CONTROLS, first_control


def test_controls_are_exactly_unicode_category_cc() -> None:
    cc = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"}
    assert set(CONTROLS) == cc


def _by_category(text: str, allow: str) -> int | None:
    """The definition the regex stands for: the first Cc character not allowed."""
    return next((i for i, c in enumerate(text) if c not in allow and unicodedata.category(c) == "Cc"), None)


@pytest.mark.parametrize(
    ("text", "allow"),
    [
        ("plain words, café ☕ 😀", ""),
        ("a\nb\tc", "\n\t"),
        ("a\nb\tc", ""),
        ("esc \x1b[31m red", "\n\t"),
        ("del \x7f and c1 \x85 \x9f", ""),
        ("\u2028 line separator is Zl, not Cc; \u200b is Cf", ""),
        ("nul at end\x00", "\n\r\t "),
        ("", ""),
        ("\r\n", "\n\r\t "),
        ("\x00\x01", CONTROLS),
    ],
)
def test_first_control_matches_the_category_definition(text: str, allow: str) -> None:
    assert first_control(text, allow) == _by_category(text, allow)
