"""Keys out of text: every place that scrubs secrets (run.log, provider text) uses this one rule.

Removing only the exact key is not enough: servers echo part of it (``sk-liv…ab12****``), upper-case
it, send it back URL-encoded in a link, or base64-encoded (a Basic-auth ``user:key`` echoed back).
So any run of :data:`MIN_RUN` or more characters of a key — of its plain, URL-encoded or base64
forms — is replaced, case-insensitively, wherever it appears. A run of 6 is found by looking up
every 6-character window of the text in the set of the key's 6-character windows; the union of the
places where windows match is exactly the set of characters that belong to some longer run.

Base64 shifts with what comes before the key (``user:`` is five bytes): the key is encoded at each
of the three byte alignments, and only the characters that depend on the key's bytes alone are kept.
Secrets shorter than 6 (but at least 4) are matched whole; shorter strings are not secrets worth the
false positives (and the registry refuses keys under 8 characters before anything is sent).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, quote_plus

from runner.textcheck import strip_controls

REDACTED = "***"
#: The shortest piece of a key that is removed wherever it appears.
MIN_RUN = 6
#: Secrets shorter than this are ignored (they would redact ordinary words).
MIN_SECRET = 4
#: Provider text is cut to this many characters before it is searched: a 1 MB "message" is a bug.
_SEARCHED = 16 * 1024


@dataclass(frozen=True)
class Needles:
    """Lower-cased: every :data:`MIN_RUN`-character window of a key's forms, and short keys whole."""

    windows: frozenset[str] = frozenset()
    whole: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.windows or self.whole)


def _base64_forms(secret: str) -> set[str]:
    """The characters of ``base64(prefix + key + suffix)`` that depend on the key alone, at each
    of the three alignments a prefix can give, in the standard and the URL-safe alphabets."""
    raw = secret.encode("utf-8")
    found: set[str] = set()
    for lead in range(3):
        data = bytes(lead) + raw
        encoded = base64.b64encode(data).decode("ascii")
        start = (0, 2, 3)[lead]  # the first characters mix in the prefix's bits
        end = 4 * (len(data) // 3) + (0, 1, 2)[len(data) % 3]  # the last ones mix in the suffix's
        stable = encoded[start:end]
        found |= {stable, stable.replace("+", "-").replace("/", "_")}
    return found


def forms(secret: str) -> set[str]:
    """The key as written, URL-encoded (in a path, a query, a form) and base64-encoded."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), *_base64_forms(secret)}


def needles(secrets: Iterable[str]) -> Needles:
    """What :func:`scrub` looks for, for ``secrets``."""
    windows: set[str] = set()
    whole: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET:
            continue
        if len(secret) < MIN_RUN:
            whole |= {f.lower() for f in (secret, quote(secret, safe=""))}
            continue
        for form in {f.lower() for f in forms(secret)}:  # quote() writes upper-case hex
            windows.update(form[i : i + MIN_RUN] for i in range(len(form) - MIN_RUN + 1))
    return Needles(frozenset(windows), frozenset(whole))


def _folded(text: str) -> str:
    """``text`` lower-cased position for position (a few characters lower-case to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


def _spans(folded: str, found: Needles) -> list[tuple[int, int]]:
    """Merged [start, end) spans covered by any occurrence of any needle."""
    windows = found.windows
    spans = [(i, i + MIN_RUN) for i in range(len(folded) - MIN_RUN + 1) if folded[i : i + MIN_RUN] in windows]
    for needle in found.whole:
        at = folded.find(needle)
        while at != -1:
            spans.append((at, at + len(needle)))
            at = folded.find(needle, at + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def scrub(text: str, found: Needles) -> str:
    """``text`` with every span covered by a needle replaced by :data:`REDACTED`."""
    if not found or not text:
        return text
    out: list[str] = []
    last = 0
    for start, end in _spans(_folded(text), found):
        out.append(text[last:start])
        out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)


def clean(text: str, found: Needles, limit: int) -> str:
    """Provider text fit for a record or a terminal: control characters out, keys out, cut to ``limit``.

    Controls go first, so a key split by them (``sk-li\\x00ve…``) joins up and is caught; the text
    is cut before it is searched (a remaining piece of 6 or more is still a piece, and is caught).
    """
    cleaned = scrub(strip_controls(text[:_SEARCHED]), found)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


@lru_cache(maxsize=32)
def _cached_needles(secrets: tuple[str, ...]) -> Needles:
    return needles(secrets)


def redact(text: str, *secrets: str) -> str:
    """``text`` without any 6-character run of any of ``secrets`` (any case, URL- or base64-encoded)."""
    return scrub(text, _cached_needles(secrets))


class Redactor:
    """A reusable :func:`redact` for a fixed set of secrets (the run's keys)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._needles = needles(secrets)

    def __call__(self, text: str) -> str:
        return scrub(text, self._needles)

    def clean(self, text: str, limit: int) -> str:
        """:func:`clean` with these secrets."""
        return clean(text, self._needles, limit)
