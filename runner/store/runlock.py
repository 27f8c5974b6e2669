"""One run per run directory: an OS file lock, and a note of who holds it.

The lock itself is ``filelock``'s (fcntl on POSIX, msvcrt on Windows), so the OS frees it when the
holder dies — even by SIGKILL. Who holds it (pid, host, start time) is written beside it in
``.lock.json``, so a second run can say whom it is waiting for (exit 4).

It is the fast, first refusal, not the last word: a deleted ``.lock`` must change nothing, so the
journal itself refuses a second writer (its owner row, :mod:`runner.store.owner`), and that is
where a run left by a dead process is taken over, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from runner.errors import LockHeldError

LOCK = ".lock"
NOTE = ".lock.json"


def holder(run_dir: Path) -> dict[str, Any] | None:
    """The note of whoever holds (or last held) the lock, if readable."""
    try:
        note = json.loads((run_dir / NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def describe(note: dict[str, Any] | None) -> str:
    if note is None:
        return "holder unknown"
    return f"pid {note.get('pid')} on {note.get('host')}, started {note.get('started')}"


def is_held(run_dir: Path) -> bool:
    """True while a run holds the lock (a read-only probe: takes and drops it at once if free)."""
    if not (run_dir / LOCK).exists():
        return False
    probe = filelock.FileLock(str(run_dir / LOCK))
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return True
    probe.release()
    return False


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the block; LockHeldError (exit 4) names the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(run_dir / LOCK))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout as exc:
        raise LockHeldError(
            f"another run of this manifest is going ({describe(holder(run_dir))}); "
            f"see it with `previz status {run_dir}`"
        ) from exc
    try:
        _write_note(run_dir)
        yield
    finally:
        if (holder(run_dir) or {}).get("pid") == os.getpid():  # not the note of a run we let in
            with contextlib.suppress(OSError):
                (run_dir / NOTE).unlink()
        lock.release()


def _write_note(run_dir: Path) -> None:
    """This run's note; one left by a dead run is replaced (the journal's owner row warns of it)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    note = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
    (run_dir / NOTE).write_text(json.dumps(note), encoding="utf-8")
