"""Is this file a whole MP4, and what does it hold: a walk of the ISO BMFF boxes, by hand.

Why not just look for ``ftyp`` at the start: a CDN error, a cut body or 24 bytes of ``ftyp``
followed by zeros all pass that test and would be kept as a finished clip. A real MP4 is a
sequence of boxes (4-byte big-endian size, 4-character type; size 1 means a 64-bit size follows,
size 0 means "to the end of the file") that tile the file exactly, starting with ``ftyp`` and
holding a ``moov`` (the index) and an ``mdat`` (the media). The walk reads only box headers and
the ``moov`` box, so a 1 GiB clip costs a few hundred reads, and it reports what the ledger
wants to know: the duration (``mvhd``) and the picture size (the first video track's ``tkhd``).
:func:`timing` reads the video track's own clock for editorial (``previz export``): its frame count
and frame rate from ``mdhd`` and ``stts``, so a timeline holds the file's real length, in frames.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: a larger ``moov`` is not a clip of a few seconds; refuse rather than read it into memory
MAX_MOOV = 16 * 1024 * 1024
#: boxes per level; a body of millions of tiny boxes must not keep the walk busy for minutes
MAX_BOXES = 100_000
#: mvhd: (timescale, duration) offsets and duration width by version; tkhd: width offset by version
_MVHD = {0: (12, 16, 4), 1: (20, 24, 8)}
_TKHD_WIDTH = {0: 76, 1: 88}

Reader = Callable[[int, int], bytes]


class Mp4Error(ValueError):
    """Not a whole MP4; the message says what is wrong and where."""


@dataclass(frozen=True)
class Mp4Info:
    duration_s: float | None  # None when the file says "unknown" (all ones)
    width: int | None  # None when there is no video track
    height: int | None
    boxes: tuple[str, ...]  # top-level box types, in order


def inspect(path: Path) -> Mp4Info:
    """Check the box structure of ``path`` and read its duration and size; Mp4Error if it is not whole."""
    size = path.stat().st_size
    with path.open("rb") as fh:

        def read(offset: int, n: int) -> bytes:
            fh.seek(offset)
            return fh.read(n)

        top = list(_boxes(read, 0, size))
        moov = _check_top(top)
        if moov[1] - moov[0] > MAX_MOOV:
            raise Mp4Error(f"moov box of {moov[1] - moov[0]} bytes (over {MAX_MOOV})")
        index = read(moov[0], moov[1] - moov[0])
    duration, width, height = _read_moov(index)
    return Mp4Info(duration, width, height, tuple(k.decode("latin-1") for k, _, _ in top))


@dataclass(frozen=True)
class Timing:
    """The first video track's length: ``frames`` at ``rate`` frames per second (``mdhd``, ``stts``)."""

    frames: int
    rate: float
    duration_s: float


def timing(path: Path) -> Timing:
    """The video track's frame count and rate; Mp4Error if the file is not whole or has no video track."""
    size = path.stat().st_size
    with path.open("rb") as fh:

        def read(offset: int, n: int) -> bytes:
            fh.seek(offset)
            return fh.read(n)

        start, end = _check_top(list(_boxes(read, 0, size)))
        if end - start > MAX_MOOV:
            raise Mp4Error(f"moov box of {end - start} bytes (over {MAX_MOOV})")
        moov = read(start, end - start)
    for kind, s, e in _boxes(_reader(moov), 0, len(moov)):
        if kind == b"trak" and _video_size(moov[s:e]) is not None:
            return _track_timing(moov[s:e])
    raise Mp4Error("no video track: the clip has no frames to count")


def _child(box: bytes, *path: bytes) -> bytes:
    """The payload of the first box at ``path`` below ``box``; Mp4Error if there is none."""
    for name in path:
        found = next((box[s:e] for kind, s, e in _boxes(_reader(box), 0, len(box)) if kind == name), None)
        if found is None:
            raise Mp4Error(f"the video track has no {name.decode()} box")
        box = found
    return box


def _track_timing(trak: bytes) -> Timing:
    mdhd = _child(trak, b"mdia", b"mdhd")
    at_scale = _MVHD.get(mdhd[0] if mdhd else -1, (len(mdhd), 0, 0))[0]
    stts = _child(trak, b"mdia", b"minf", b"stbl", b"stts")
    try:
        (timescale,) = struct.unpack_from(">I", mdhd, at_scale)
        (count,) = struct.unpack_from(">I", stts, 4)
        entries = [struct.unpack_from(">II", stts, 8 + 8 * i) for i in range(count)]
    except struct.error as exc:
        raise Mp4Error("the video track's mdhd or stts box is cut short") from exc
    frames, ticks = sum(n for n, _ in entries), sum(n * delta for n, delta in entries)
    if timescale == 0 or frames == 0 or ticks == 0:
        raise Mp4Error("the video track has no frames or a zero timescale")
    return Timing(frames, frames * timescale / ticks, ticks / timescale)


def duration_mismatch(actual_s: float | None, requested_s: float, tolerance_s: float = 1.0) -> bool:
    """True when a clip's known duration is more than ``tolerance_s`` away from the one asked for."""
    return actual_s is not None and abs(actual_s - requested_s) > tolerance_s


def _boxes(read: Reader, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) for each box in [start, end); Mp4Error unless they tile it."""
    pos, count = start, 0
    while pos < end:
        count += 1
        head = read(pos, min(16, end - pos))
        size, kind, header = int.from_bytes(head[:4], "big"), head[4:8], 8
        if len(head) < 8 or (size == 1 and len(head) < 16):
            raise Mp4Error(f"{end - pos} stray bytes at offset {pos}, too few for a box header")
        if size == 1:
            size, header = int.from_bytes(head[8:16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end or count > MAX_BOXES:
            raise Mp4Error(f"box {kind!r} at offset {pos} has size {size}: the boxes do not tile the file")
        yield kind, pos + header, pos + size
        pos += size


def _check_top(top: list[tuple[bytes, int, int]]) -> tuple[int, int]:
    """The moov payload's span, once the top level is known to be ftyp first, moov and mdat present."""
    for kind, start, _ in top:
        if not all(0x20 <= c < 0x7F for c in kind):
            raise Mp4Error(f"garbage where a box should start (offset {start - 8}): not an MP4")
    kinds = [k for k, _, _ in top]
    if not kinds or kinds[0] != b"ftyp":
        raise Mp4Error("no ftyp box at the start: not an MP4")
    missing = [k.decode() for k in (b"moov", b"mdat") if k not in kinds]
    if missing:
        raise Mp4Error(f"no {' and no '.join(missing)} box: not a whole MP4")
    return next((start, end) for kind, start, end in top if kind == b"moov")


def _read_moov(moov: bytes) -> tuple[float | None, int | None, int | None]:
    children = list(_boxes(_reader(moov), 0, len(moov)))
    mvhd = next((moov[s:e] for kind, s, e in children if kind == b"mvhd"), None)
    if mvhd is None:
        raise Mp4Error("moov has no mvhd box: the clip's duration is unknown")
    for kind, s, e in children:
        size = _video_size(moov[s:e]) if kind == b"trak" else None
        if size is not None:
            return _duration(mvhd), *size
    return _duration(mvhd), None, None


def _duration(mvhd: bytes) -> float | None:
    try:
        at_scale, at_duration, width = _MVHD[mvhd[0]]
        (timescale,) = struct.unpack_from(">I", mvhd, at_scale)
        duration = int.from_bytes(mvhd[at_duration : at_duration + width], "big")
    except (IndexError, KeyError, struct.error) as exc:
        raise Mp4Error("mvhd box is cut short or of an unknown version") from exc
    if timescale == 0 or len(mvhd) < at_duration + width:
        raise Mp4Error("mvhd box is cut short or has a zero timescale")
    return None if duration == (1 << (8 * width)) - 1 else duration / timescale


def _video_size(trak: bytes) -> tuple[int, int] | None:
    """(width, height) from the track's ``tkhd`` when its ``mdia/hdlr`` says video, else None."""
    children = {kind: trak[s:e] for kind, s, e in reversed(list(_boxes(_reader(trak), 0, len(trak))))}
    mdia = children.get(b"mdia", b"")
    handlers = [mdia[s:e] for kind, s, e in _boxes(_reader(mdia), 0, len(mdia)) if kind == b"hdlr"]
    tkhd = children.get(b"tkhd", b"")
    if not handlers or handlers[0][8:12] != b"vide" or not tkhd:
        return None
    at = _TKHD_WIDTH.get(tkhd[0], len(tkhd))
    if len(tkhd) < at + 8:
        raise Mp4Error("tkhd box of the video track is cut short")
    width, height = struct.unpack_from(">II", tkhd, at)
    return round(width / 65536), round(height / 65536)


def _reader(data: bytes) -> Reader:
    return lambda offset, n: data[offset : offset + n]
