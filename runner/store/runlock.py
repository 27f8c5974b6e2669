"""One run per run directory: an OS file lock, and a note of who holds it.

The lock itself is ``filelock``'s (fcntl on POSIX, msvcrt on Windows), so the OS frees it when the
holder dies — even by SIGKILL. Who holds it (pid, host, start time) is written beside it in
``.lock.json``, so a second run can say whom it is waiting for (exit 4), and a run that finds a note
left by a process that is gone says it took over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
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


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@contextlib.contextmanager
def run_lock(run_dir: Path, *, warn: Callable[[str], None]) -> Iterator[None]:
    """Hold the run directory's lock for the block; LockHeldError (exit 4) names the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(run_dir / LOCK))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout as exc:
        raise LockHeldError(
            f"another run of this manifest is going ({describe(holder(run_dir))}; lock {run_dir / LOCK})"
        ) from exc
    try:
        _take_over(run_dir, warn)
        yield
    finally:
        with contextlib.suppress(OSError):
            (run_dir / NOTE).unlink()
        lock.release()


def _take_over(run_dir: Path, warn: Callable[[str], None]) -> None:
    old = holder(run_dir)
    here = socket.gethostname()
    if old is not None and old.get("host") == here and not _alive(old.get("pid")):
        warn(f"took over the lock left by a run that is gone ({describe(old)})")
    note = {"pid": os.getpid(), "host": here, "started": datetime.now(UTC).isoformat(timespec="seconds")}
    (run_dir / NOTE).write_text(json.dumps(note), encoding="utf-8")
