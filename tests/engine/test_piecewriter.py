"""The download's writer thread (runner/engine/piecewriter.py): order, hash, fsync, and failures.

Real files in ``tmp_path``; a full disk is a file object whose write raises ENOSPC after a number
of bytes, as the kernel's would.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from io import BufferedWriter
from pathlib import Path

import pytest

from runner.engine.piecewriter import PieceWriter

pytestmark = pytest.mark.anyio

PIECES = [bytes([n]) * (64 * 1024 + n) for n in range(1, 40)]


class FullAfter:
    """A real file that refuses writes once ``room`` bytes are in it (ENOSPC)."""

    def __init__(self, fh: BufferedWriter, room: int) -> None:
        self._fh = fh
        self.room = room

    def write(self, data: bytes, /) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        return self._fh.fileno()

    def close(self) -> None:
        self._fh.close()


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "previz-piece-writer"]


async def test_pieces_arrive_whole_in_order_and_hashed(tmp_path: Path) -> None:
    path = tmp_path / "clip.part"
    hasher = hashlib.sha256()
    writer = PieceWriter(lambda: path.open("wb"), hasher, depth=2)  # a short queue: the loop waits
    for piece in PIECES:
        await writer.put(piece)
    await writer.finish()
    body = b"".join(PIECES)
    assert path.read_bytes() == body
    assert hasher.hexdigest() == hashlib.sha256(body).hexdigest()
    assert _writer_threads() == []


async def test_a_full_disk_surfaces_as_the_same_oserror_and_the_thread_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.part"
    writer = PieceWriter(lambda: FullAfter(path.open("wb"), room=5 * 64 * 1024), hashlib.sha256(), depth=2)
    with pytest.raises(OSError) as caught:
        for piece in PIECES:
            await writer.put(piece)
        await writer.finish()
    await writer.abort()
    assert caught.value.errno == errno.ENOSPC
    assert _writer_threads() == [], "the writer thread ended"


async def test_abort_drops_what_is_queued_and_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "clip.part"
    writer = PieceWriter(lambda: path.open("wb"), hashlib.sha256(), depth=64)
    for piece in PIECES[:10]:
        await writer.put(piece)
    await writer.abort()
    await writer.abort()  # twice is harmless: every way out calls it
    assert path.stat().st_size <= sum(map(len, PIECES[:10]))
    assert _writer_threads() == []


async def test_a_file_that_cannot_be_opened_fails_at_the_first_put_or_the_finish(tmp_path: Path) -> None:
    writer = PieceWriter(lambda: tmp_path.open("wb"), hashlib.sha256())  # a directory
    with pytest.raises(IsADirectoryError):
        await writer.put(PIECES[0])
        await writer.finish()
    await writer.abort()
    assert _writer_threads() == []
