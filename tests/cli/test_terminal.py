"""The streams the CLI writes to, when the terminal under them goes away (runner.cli.terminal)."""

from __future__ import annotations

import errno
import io
import os

import pytest

from runner.cli.terminal import TerminalWatch


class _Hungup(io.StringIO):
    """A stream whose writes fail as a hung-up terminal's do (or with ``err``), after ``ok`` writes."""

    def __init__(self, fd: int, err: int = errno.EIO, ok: int = 1) -> None:
        super().__init__()
        self._fd, self._err, self._ok = fd, err, ok

    def write(self, text: str) -> int:
        if self._ok <= 0:
            raise OSError(self._err, os.strerror(self._err))
        self._ok -= 1
        return super().write(text)

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return self._ok > 0  # as a hung-up tty: its ioctl fails once it is gone


@pytest.mark.parametrize("err", [errno.EIO, errno.EPIPE])
def test_the_first_failed_write_silences_the_stream_and_tells_the_watch(err: int) -> None:
    reader, writer = os.pipe()
    try:
        watch = TerminalWatch(standard_fds=())
        stream = watch.guard(_Hungup(writer, err))
        assert stream.isatty() and not watch.gone
        stream.write("first\n")
        assert stream.write("the live table\r") == len("the live table\r"), "swallowed, not raised"
        assert watch.gone
        assert stream.isatty(), "still the terminal it was, so the view does not change course"
        os.write(writer, b"x")  # the descriptor now points at the null device…
        assert os.read(reader, 1) == b"", "…so the pipe it was lost its writer and x went nowhere"
    finally:
        os.close(reader)
        os.close(writer)


def test_other_write_errors_are_not_mistaken_for_a_closed_terminal() -> None:
    watch = TerminalWatch(standard_fds=())
    stream = watch.guard(_Hungup(-1, errno.ENOSPC, ok=0))
    with pytest.raises(OSError, match="No space left"):
        stream.write("x")
    assert not watch.gone
