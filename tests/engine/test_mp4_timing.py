"""A video track's frames and rate from the MP4's ``moov`` (``mdhd``, ``stts``): what ``export`` lays
on the timeline, held against FFmpeg (PyAV) for every clip the simulator ships."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from runner.engine.mp4 import Mp4Error, timing
from runner.simulator.mp4 import SECONDS, Clip, base_clip


@pytest.mark.parametrize("seconds", list(SECONDS))
def test_frames_and_rate_agree_with_ffmpeg(tmp_path: Path, seconds: int) -> None:
    clip = tmp_path / "c.mp4"
    clip.write_bytes(Clip("task-1", base=base_clip(seconds)).to_bytes())
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        rate = float(stream.average_rate or 0)
    found = timing(clip)
    assert (found.frames, found.rate) == (frames, rate)
    assert found.duration_s == pytest.approx(frames / rate)


def test_a_file_that_is_not_a_whole_mp4_is_refused(tmp_path: Path) -> None:
    whole = base_clip(2)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Mp4Error):
        timing(cut)
    text = tmp_path / "page.mp4"
    text.write_bytes(b"<html>a CDN error page</html>")
    with pytest.raises(Mp4Error):
        timing(text)
