"""Pause Python's cyclic garbage collector while a big, acyclic structure is being built.

Reading a manifest allocates hundreds of thousands of objects that all stay alive until the end
(YAML nodes, their marks, the plain data, positions, resolved shots). Each of them counts towards
the collector's next pass, and every pass walks the objects that survived — all of them, since
nothing is garbage yet — so for a 10,000-shot manifest the collector took more than half of the
time spent composing the YAML (about 0.6 s of 1.2 s) and found nothing to free. What a manifest
builds is freed by reference counting; the one exception, the node cycle of a recursive YAML alias
(refused as a problem), is left for the collector's first pass after it is switched back on.

The pause nests and is safe across threads: only the outermost pause switches the collector off,
and only when it was on, and the last one out switches it back on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting still frees what is dropped)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
