"""A terminal that goes away under a run: the SSH session closed, the window shut (issue 24 point 5).

Why: writes to a terminal that has hung up fail with ``EIO`` (a pipe whose reader died: ``EPIPE``).
The live view redraws four times a second from a thread of rich's, and every progress line is a
write — so a closed session used to crash the run (exit 1, ``OSError: [Errno 5]``) with its takes
in flight. Here the streams the CLI writes to are wrapped: the first write that finds the terminal
gone points the standard descriptors at the null device (later writes, ours and Python's own at
exit, succeed silently — ``run.log`` keeps every event), and the run is asked to drain as on
SIGHUP, exit 130. When SIGHUP was ignored at start (``nohup``, some tmux and ``setsid`` set-ups),
the user asked for the night to outlive the terminal: the run goes on, quietly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from typing import Any, TextIO

#: What a write to a terminal (or pipe) that went away fails with.
GONE = frozenset({errno.EIO, errno.EPIPE, errno.ENXIO})


class TerminalWatch:
    """Knows whether the terminal went away; hands out streams that notice it."""

    def __init__(self, *, standard_fds: tuple[int, ...] = (1, 2)) -> None:
        self._gone = threading.Event()
        self._standard_fds = standard_fds  # silenced too when they are the terminal (tests: none)
        #: SIGHUP ignored when previz started: the night outlives the terminal.
        self.outlive = hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    def guard(self, stream: TextIO) -> TextIO:
        guarded: TextIO = _Guarded(stream, self)  # type: ignore[assignment]  # duck-typed stream
        return guarded

    def went_away(self, fd: int | None) -> None:
        """Called once a write failed as a vanished terminal does: silence every standard stream."""
        if self._gone.is_set():
            return
        self._gone.set()
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            for target in {*self._standard_fds, *([] if fd is None else [fd])}:
                if target == fd or os.isatty(target):
                    os.dup2(null, target)
            os.close(null)


class _Guarded:
    """A text stream whose writes survive the terminal going away (and say so to the watch)."""

    def __init__(self, stream: TextIO, watch: TerminalWatch) -> None:
        self._stream = stream
        self._watch = watch
        try:
            self._tty = stream.isatty()
        except (OSError, ValueError):
            self._tty = False

    def isatty(self) -> bool:
        # As it was at the start: a hung-up terminal's isatty() is False (its ioctl fails), and
        # rich would stop drawing — and so stop writing, and never find out the terminal is gone.
        return self._tty

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self._lost(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        if exc.errno not in GONE:
            raise exc
        fd: int | None
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError):
            fd = None
        self._watch.went_away(fd)
        with contextlib.suppress(OSError):  # what sat in the buffer goes to the null device now
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding…: the stream's own
        return getattr(self._stream, name)


def standard(watch: TerminalWatch, *, stderr: bool = False) -> TextIO:
    """``sys.stdout`` (or ``sys.stderr``), guarded by ``watch``."""
    return watch.guard(sys.stderr if stderr else sys.stdout)
