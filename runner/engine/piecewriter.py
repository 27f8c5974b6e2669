"""A download's disk side: one thread hashes and writes what the event loop read.

Why a thread of its own, fed by a bounded queue: hashing and writing a clip on the event loop
stalls every other take for as long as the disk takes, and one worker-thread hop per chunk makes
the loop wait for each write in turn, so reading and writing never overlap. Here the loop only
queues a piece (no hop) and goes back to the socket while the thread hashes and writes the one
before it — ``hashlib`` and file writes release the GIL for large buffers. The queue holds at
most ``depth`` pieces, so a slow disk slows the reading down instead of growing memory. The thread
opens the file, fsyncs it once at the end and closes it, so the loop makes one thread hop per
download for all of that (waiting for the end), not one per step.

A write that fails (a full disk, or a file that cannot be opened) is kept and raised to the loop
as the same :class:`OSError` at its next :meth:`PieceWriter.put` or at :meth:`PieceWriter.finish`;
the thread goes on draining the queue so the loop never blocks on it. :meth:`PieceWriter.abort`
stops and joins the thread on every way out, a cancelled download included.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread

_END = b""  # the loop has nothing more (a real piece is never empty)


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Sink(Protocol):
    """The open ``.part`` file (a binary file object)."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class PieceWriter:
    """Hashes and writes pieces in a thread of its own (see the module doc). Use once."""

    def __init__(self, open_file: Callable[[], Sink], hasher: Hasher, *, depth: int = 4) -> None:
        self._open = open_file
        self._fh: Sink | None = None
        self._hasher = hasher
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._error: OSError | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._work, name="previz-piece-writer", daemon=True)
        self._thread.start()

    async def put(self, piece: bytes) -> None:
        """Queue ``piece`` (waiting in a worker thread only while the queue is full)."""
        self._raise_failure()
        if not piece:
            return
        try:
            self._queue.put_nowait(piece)
        except queue.Full:
            await anyio.to_thread.run_sync(self._queue.put, piece)
        else:
            await anyio.lowlevel.checkpoint()  # a body that needs no waiting must not starve the loop

    async def finish(self) -> None:
        """Every piece hashed, written and fsynced; raises the first write error, if any."""
        await self._end()
        self._raise_failure()

    async def abort(self) -> None:
        """Stop the thread without writing what is still queued (safe after :meth:`finish`)."""
        self._aborted = True
        await self._end()

    async def _end(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._queue.put_nowait(_END)
        except queue.Full:
            await anyio.to_thread.run_sync(self._queue.put, _END)
        await anyio.to_thread.run_sync(self._thread.join)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        try:
            self._fh = self._open()
        except OSError as exc:
            self._error = exc
        ended = False
        while not ended:
            batch, ended = self._take_waiting()
            if self._error is None and not self._aborted and batch:
                self._write(batch)
        if self._error is None and not self._aborted:
            self._sync()
        self._close()

    def _take_waiting(self) -> tuple[list[bytes], bool]:
        """The next piece and every piece queued behind it, taken in one wake-up of the thread
        (fewer GIL hand-offs with the loop than one piece per wake-up); True at the end. They are
        hashed and written one by one, not joined: a joined copy would double what is in memory."""
        pieces = [self._queue.get()]
        while pieces[-1] and len(pieces) < self._queue.maxsize:
            try:
                pieces.append(self._queue.get_nowait())
            except queue.Empty:
                break
        ended = not pieces[-1]
        return [p for p in pieces if p], ended

    def _write(self, pieces: list[bytes]) -> None:
        assert self._fh is not None
        try:
            while pieces:
                piece = pieces.pop(0)  # let go of each piece once written
                self._hasher.update(piece)
                self._fh.write(piece)
        except OSError as exc:
            self._error = exc

    def _sync(self) -> None:
        assert self._fh is not None
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self._error = exc

    def _close(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.close()
        except OSError as exc:  # buffered bytes the disk refused
            self._error = self._error or exc
