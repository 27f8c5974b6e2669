"""Make the simulator's clip: runner/simulator/assets/clip.mp4.

Why this exists: the simulator must serve real, playable MP4 files, and the project ships one it
made itself rather than a file of unknown origin. This script is how that file was made; run it
again only to change the clip (the bytes are committed, so neither tests nor users need PyAV).

    pip install av        # PyAV, with its bundled FFmpeg (libx264)
    python scripts/make_clip.py [--out PATH]

The clip is 2 s of 320×180 H.264 at 24 fps: a drifting colour gradient with a bright bar that
sweeps across, so a person opening it sees motion. ``+faststart`` puts the ``moov`` box before
``mdat`` (the layout real CDNs serve), and the file stays around 20 KB so every simulated download
is cheap. The simulator appends a ``free`` box per task, which keeps the file valid.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

WIDTH = 320
HEIGHT = 180
FPS = 24
SECONDS = 2
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "runner" / "simulator" / "assets" / "clip.mp4"


def _luma(frame_index: int, line_size: int) -> bytes:
    """Y plane: a diagonal gradient drifting right, with a bright vertical bar sweeping across."""
    shift = frame_index * 4
    bar_x = (frame_index * WIDTH) // (FPS * SECONDS)
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


def make_clip(out: Path) -> int:
    """Encode the clip to ``out``; returns its size in bytes."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = WIDTH
        stream.height = HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": "30", "preset": "veryslow", "tune": "animation"}
        for index in range(FPS * SECONDS):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            y_plane, u_plane, v_plane = frame.planes
            y_plane.update(_luma(index, y_plane.line_size))
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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    size = make_clip(args.out)
    print(f"wrote {args.out} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
