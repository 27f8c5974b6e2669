"""Control characters in text the user gave us (prompts, paths, URLs, keys).

A NUL or an ANSI escape in a prompt is sent to a provider as-is and comes back in the ledger and
the terminal; in a path it makes ``os.stat`` raise ValueError; in a key it breaks the HTTP header.
One definition — Unicode category Cc: C0 controls, DEL and C1 controls — serves every check.
"""

from __future__ import annotations

import functools
import re

#: Category Cc, spelled out: Unicode's stability policy fixes it at these 65 code points, and one
#: regex search is ~20× faster than asking ``unicodedata`` about every character of 10,000 prompts.
CONTROLS = "".join(map(chr, (*range(0x00, 0x20), *range(0x7F, 0xA0))))


@functools.lru_cache(maxsize=8)
def _controls_except(allow: str) -> re.Pattern[str]:
    left = "".join(re.escape(c) for c in CONTROLS if c not in allow)
    return re.compile(f"[{left}]" if left else "(?!)")  # (?!) never matches


def first_control(text: str, allow: str = "") -> int | None:
    """Index of the first control character in ``text`` that is not in ``allow``, or None."""
    found = _controls_except(allow).search(text)
    return found.start() if found is not None else None


def describe_control(text: str, index: int) -> str:
    """``U+001B at character 12``: names the character without printing it."""
    return f"U+{ord(text[index]):04X} at character {index + 1}"
