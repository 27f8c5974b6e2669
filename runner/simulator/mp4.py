"""The clips the simulator serves: real MP4s as long as the task asked for, made unique per task.

Why a ``free`` box: every task must download as different bytes (so a runner that saves the
wrong task's file, or the same file twice, is caught by its checksum), yet each must stay a
valid, playable MP4. ISO BMFF players skip ``free`` boxes, so appending one that names the task
after the shipped clip's last box keeps the file valid. The same box carries the padding when a
test asks for big files (``clip_bytes``); its bytes are produced lazily, so a 100 MB clip never
exists in memory.

Why one clip per duration: the runner reads each clip's ``mvhd`` duration and flags a take whose
clip is more than 1 s off the requested duration, so a task asking for 8 s must get an 8 s clip.
The shipped clips are ``assets/clip_02s.mp4`` … ``clip_10s.mp4`` (every whole-second duration the
three APIs accept), made by ``scripts/make_clip.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources

CHUNK = 64 * 1024
_MAX_BOX32 = 2**32 - 1
#: the shipped clips' durations, in whole seconds
SECONDS = range(2, 11)
#: the clip for callers that do not care how long it is (AIML's default duration)
DEFAULT_SECONDS = 5


def asset_name(seconds: int) -> str:
    """The shipped clip nearest ``seconds`` long (the APIs' own checks keep requests in range)."""
    nearest = min(max(seconds, SECONDS.start), SECONDS.stop - 1)
    return f"clip_{nearest:02d}s.mp4"


@functools.cache
def base_clip(seconds: int = DEFAULT_SECONDS) -> bytes:
    """The shipped MP4 of ``seconds`` (320×180, H.264, 24 fps)."""
    return resources.files("runner.simulator").joinpath(f"assets/{asset_name(seconds)}").read_bytes()


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
