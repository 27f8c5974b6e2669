"""Control characters in text the user gave us (prompts, paths, URLs, keys) or a provider sent.

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


#: Line breaks and tabs become a space (a message stays one line, its words apart); every other
#: control character, and the invisible format characters that reorder or hide text (bidi
#: overrides, zero-width spaces), is dropped.
_AS_SPACE = "\t\n\r\x0b\x0c\x85\u2028\u2029"
_INVISIBLE = "".join(map(chr, (0xAD, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
                              *range(0x2066, 0x206A), 0xFEFF)))  # fmt: skip
_STRIP = {ord(c): (" " if c in _AS_SPACE else None) for c in (*CONTROLS, *_AS_SPACE, *_INVISIBLE)}


def strip_controls(text: str) -> str:
    """``text`` safe to print on a terminal: no escape sequence, bell, carriage return or line break.

    For text from the far side of the wire (a provider's message, a task id, a URL), which no
    check of ours has seen: ``\\x1b[2J`` would clear the screen, ``\\x1b]0;…\\x07`` set its title.
    """
    return text.translate(_STRIP)
