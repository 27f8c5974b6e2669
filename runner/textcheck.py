"""Control characters in text the user gave us (prompts, paths, URLs, keys).

A NUL or an ANSI escape in a prompt is sent to a provider as-is and comes back in the ledger and
the terminal; in a path it makes ``os.stat`` raise ValueError; in a key it breaks the HTTP header.
One definition — Unicode category Cc: C0 controls, DEL and C1 controls — serves every check.
"""

from __future__ import annotations

import unicodedata


def first_control(text: str, allow: str = "") -> int | None:
    """Index of the first control character in ``text`` that is not in ``allow``, or None."""
    for index, char in enumerate(text):
        if char not in allow and unicodedata.category(char) == "Cc":
            return index
    return None


def describe_control(text: str, index: int) -> str:
    """``U+001B at character 12``: names the character without printing it."""
    return f"U+{ord(text[index]):04X} at character {index + 1}"
