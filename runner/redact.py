"""Keys out of text: every place that scrubs secrets (run.log, provider messages) uses this one rule.

Removing only the exact key is not enough: servers echo part of it (``key_abc…ab****``), upper-case
it, or send it back URL-encoded in a link. So any run of :data:`MIN_RUN` or more characters of a key
(or of its URL-encoded form) is replaced, case-insensitively, wherever it appears. A run of 8 is
found by looking for every 8-character window of the key; the union of the places where windows
occur is exactly the set of characters that belong to some longer run. Secrets shorter than 8 (but
at least 4) are matched whole. Shorter strings are not secrets worth the false positives.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote

REDACTED = "***"
#: The shortest piece of a key that is removed wherever it appears.
MIN_RUN = 8
#: Secrets shorter than this are ignored (they would redact ordinary words).
MIN_SECRET = 4


def _forms(secret: str) -> set[str]:
    """The key as written and as it would look URL-encoded (in a path or a query)."""
    return {secret, quote(secret, safe=""), quote(secret)}


def needles(secrets: Iterable[str]) -> frozenset[str]:
    """Lower-cased strings whose every occurrence must go: 8-character windows, or short keys whole."""
    found: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET:
            continue
        for form in {f.lower() for f in _forms(secret)}:  # quote() writes upper-case hex
            if len(form) < MIN_RUN:
                found.add(form)
            else:
                found.update(form[i : i + MIN_RUN] for i in range(len(form) - MIN_RUN + 1))
    return frozenset(found)


def _folded(text: str) -> str:
    """``text`` lower-cased position for position (a few characters lower-case to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


def _spans(folded: str, found: frozenset[str]) -> list[tuple[int, int]]:
    """Merged [start, end) spans covered by any occurrence of any needle."""
    spans: list[tuple[int, int]] = []
    for needle in found:
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


def scrub(text: str, found: frozenset[str]) -> str:
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


@lru_cache(maxsize=32)
def _cached_needles(secrets: tuple[str, ...]) -> frozenset[str]:
    return needles(secrets)


def redact(text: str, *secrets: str) -> str:
    """``text`` without any 8-character run of any of ``secrets`` (in any case, or URL-encoded)."""
    return scrub(text, _cached_needles(secrets))


class Redactor:
    """A reusable :func:`redact` for a fixed set of secrets (the run's keys)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._needles = needles(secrets)

    def __call__(self, text: str) -> str:
        return scrub(text, self._needles)
