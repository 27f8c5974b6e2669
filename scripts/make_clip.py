"""Make the simulator's clips: runner/simulator/assets/clip_02s.mp4 … clip_10s.mp4.

Why this exists: the simulator must serve real, playable MP4 files, and the project ships ones it
made itself rather than files of unknown origin. Why one per duration: the runner reads each
clip's ``mvhd`` duration and flags a take whose clip is more than 1 s off the duration it asked
for, so a simulated 8 s take must download an 8 s clip. The three APIs take whole seconds (AIML 5
or 10, Runware and Runway 2–10), so one clip per second from 2 to 10 covers every valid request.
This script is how those files were made; run it again only to change them (the bytes are
committed, so neither tests nor users need PyAV).

    pip install av        # PyAV, with its bundled FFmpeg (libx264)
    python scripts/make_clip.py [--out-dir DIR] [--seconds N ...]

Each clip is N s of 320×180 H.264 at 24 fps: a drifting colour gradient with a bright bar that
sweeps across once per clip, so a person opening it sees motion. ``+faststart`` puts the ``moov``
box before ``mdat`` (the layout real CDNs serve). A keyframe every 10 s and a high CRF keep the
whole set small (a few KB per second), so every simulated download is cheap. The simulator
appends a ``free`` box per task, which keeps each file valid.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

WIDTH = 320
HEIGHT = 180
FPS = 24
CRF = "30"
#: every duration the simulated APIs accept, in whole seconds
DURATIONS = tuple(range(2, 11))
DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "runner" / "simulator" / "assets"


def clip_name(seconds: int) -> str:
    """The asset's file name; runner/simulator/mp4.py looks clips up by the same pattern."""
    return f"clip_{seconds:02d}s.mp4"


def _luma(frame_index: int, frames: int, line_size: int) -> bytes:
    """Y plane: a diagonal gradient drifting right, with a bright vertical bar sweeping across."""
    shift = frame_index * 4
    bar_x = (frame_index * WIDTH) // frames
    rows = bytearray()
    for y in range(HEIGHT):
        row = bytearray(line_size)
        for x in range(WIDTH):
            value = 40 + ((x + y // 2 + shift) % 160)
            if bar_x <= x < bar_x + 12:
                value = 235
            row[x] = value
        rows += row
    return bytes(rows)


def _chroma(frame_index: int, line_size: int, height: int, base: int) -> bytes:
    """U or V plane: a slow vertical colour wash that changes with time."""
    rows = bytearray()
    for y in range(height):
        value = (base + y + frame_index * 2) % 256
        value = 64 + value // 2
        rows += bytes([value]) * line_size
    return bytes(rows)


def make_clip(out: Path, seconds: int) -> int:
    """Encode a ``seconds``-long clip to ``out``; returns its size in bytes."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = WIDTH
        stream.height = HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": CRF, "preset": "veryslow", "tune": "animation", "g": str(FPS * 10)}
        frames = FPS * seconds
        for index in range(frames):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            y_plane, u_plane, v_plane = frame.planes
            y_plane.update(_luma(index, frames, y_plane.line_size))
            chroma_height = u_plane.buffer_size // u_plane.line_size
            u_plane.update(_chroma(index, u_plane.line_size, chroma_height, 40))
            v_plane.update(_chroma(index, v_plane.line_size, chroma_height, 160))
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--seconds", type=int, nargs="+", choices=DURATIONS, default=DURATIONS)
    args = parser.parse_args(argv)
    total = 0
    for seconds in args.seconds:
        out = args.out_dir / clip_name(seconds)
        size = make_clip(out, seconds)
        total += size
        print(f"wrote {out} ({size} bytes)")
    print(f"{len(args.seconds)} clips, {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
