"""The clips the simulator serves: one real MP4, made unique per task.

Why a ``free`` box: every task must download as different bytes (so a runner that saves the
wrong task's file, or the same file twice, is caught by its checksum), yet each must stay a
valid, playable MP4. ISO BMFF players skip ``free`` boxes, so appending one that names the task
after the shipped clip's last box keeps the file valid. The same box carries the padding when a
test asks for big files (``clip_bytes``); its bytes are produced lazily, so a 100 MB clip never
exists in memory.

The shipped clip is ``assets/clip.mp4``, made by ``scripts/make_clip.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources

CHUNK = 64 * 1024
_MAX_BOX32 = 2**32 - 1


@functools.cache
def base_clip() -> bytes:
    """The shipped MP4 (2 s, 320×180, H.264)."""
    return resources.files("runner.simulator").joinpath("assets/clip.mp4").read_bytes()


class Clip:
    """A task's file: base clip + ``free`` box (label, then zero padding up to ``pad_to`` bytes).

    It is never materialised: :meth:`read` yields any byte range from three virtual segments.
    """

    def __init__(self, label: str, *, pad_to: int | None = None, base: bytes | None = None) -> None:
        self._base = base if base is not None else base_clip()
        self._label = label.encode()
        natural = len(self._base) + 8 + len(self._label)
        box_size = max(natural, pad_to or 0) - len(self._base)
        if box_size > _MAX_BOX32:  # a 64-bit "largesize" header
            header = (1).to_bytes(4, "big") + b"free" + box_size.to_bytes(8, "big")
        else:
            header = box_size.to_bytes(4, "big") + b"free"
        self._head = header + self._label
        self.size = len(self._base) + box_size
        self._zeros = self.size - len(self._base) - len(self._head)

    def read(self, start: int = 0, end: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive; default the end), in pieces of at most ``chunk``."""
        stop = self.size if end is None else min(end, self.size)
        offset = start
        while offset < stop:
            piece = self._piece(offset, min(stop, offset + chunk))
            yield piece
            offset += len(piece)

    def _piece(self, start: int, stop: int) -> bytes:
        """Bytes from one segment at most, starting at ``start`` and ending by ``stop``."""
        base_len = len(self._base)
        if start < base_len:
            return self._base[start : min(stop, base_len)]
        head_end = base_len + len(self._head)
        if start < head_end:
            return self._head[start - base_len : min(stop, head_end) - base_len]
        return bytes(stop - start)

    def to_bytes(self) -> bytes:
        """The whole file (small clips only; tests)."""
        return b"".join(self.read())
