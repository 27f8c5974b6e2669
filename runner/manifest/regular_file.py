"""Reading a file the user named, without hanging or filling memory on something that is not a file.

``Path.read_bytes()`` on a FIFO waits forever for a writer, on ``/dev/zero`` (or a symlink to it)
reads until memory runs out, and on a symlink loop raises an error that says little. So the path
is ``stat``-ed first (following links: a loop is ELOOP here), anything but a regular file is refused
by name, the size is checked against a cap *before* reading, the file is opened non-blocking (a
FIFO swapped in after the stat cannot block the open) and checked again on the open descriptor, and
at most ``limit + 1`` bytes are read, so a file that grows meanwhile is still refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class Refused(Exception):
    """The path cannot be read as asked; ``str()`` says why, without the path (callers name it)."""


class TooBig(Refused):
    """A regular file over the cap (or one that grew past it while it was read)."""


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _check(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise Refused(f"is {what}, not a regular file")
    if st.st_size > limit:
        raise TooBig(f"is {_mb(st.st_size)}; at most {_mb(limit)} is read")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``); Refused or OSError otherwise."""
    try:
        _check(os.stat(path), limit)
        fd = os.open(path, _FLAGS)
    except ValueError:  # an embedded NUL: no such file can exist
        raise Refused("is not a usable path (it holds a NUL character)") from None
    with os.fdopen(fd, "rb") as fh:
        _check(os.fstat(fh.fileno()), limit)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooBig(f"grew past {_mb(limit)} while it was read")
    return data
