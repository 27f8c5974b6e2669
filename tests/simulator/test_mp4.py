"""The shipped clip is a real MP4, and per-task clips stay valid while differing byte for byte."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from runner.engine.mp4 import inspect
from runner.simulator.mp4 import DEFAULT_SECONDS, SECONDS, Clip, base_clip
from tests.simulator.helpers import assert_mp4, mp4_boxes


def test_shipped_clip_is_an_mp4_box_sequence() -> None:
    data = base_clip()
    kinds = assert_mp4(data)
    assert kinds.index("moov") < kinds.index("mdat")  # faststart: playable while streaming
    assert data[8:12] in (b"isom", b"mp42", b"iso2", b"avc1")  # a major brand players know
    assert 4_000 < len(data) < 200_000


def test_each_task_gets_unique_valid_bytes() -> None:
    first = Clip("previz-sim aimlapi task a").to_bytes()
    second = Clip("previz-sim aimlapi task b").to_bytes()
    assert hashlib.sha256(first).digest() != hashlib.sha256(second).digest()
    for data, label in ((first, b"task a"), (second, b"task b")):
        kinds = assert_mp4(data)
        assert kinds[-1] == "free"
        assert data.startswith(base_clip())
        assert data.endswith(label)


def test_padding_reaches_the_exact_size_and_stays_valid() -> None:
    size = 3 * 1024 * 1024 + 7
    clip = Clip("padded", pad_to=size)
    data = clip.to_bytes()
    assert clip.size == len(data) == size
    boxes = mp4_boxes(data)
    assert boxes[-1] == ("free", size - len(base_clip()))


def test_padding_below_the_natural_size_is_ignored() -> None:
    clip = Clip("tiny", pad_to=10)
    assert clip.size == len(base_clip()) + 8 + len("tiny")


@pytest.mark.parametrize(
    ("start", "stop"), [(0, 16), (100, 5000), (16_000, 16_500), (0, None), (16_300, None)]
)
def test_ranges_read_the_same_bytes_as_the_whole(start: int, stop: int | None) -> None:
    clip = Clip("ranged", pad_to=20_000)
    whole = clip.to_bytes()
    assert b"".join(clip.read(start, stop, chunk=777)) == whole[start:stop]


def test_huge_clips_use_a_64_bit_free_box_without_materialising() -> None:
    size = 5 * 2**30  # 5 GiB: over the 32-bit box size
    clip = Clip("huge", pad_to=size)
    assert clip.size == size
    base = len(base_clip())
    header = b"".join(clip.read(base, base + 16))
    assert header[:8] == (1).to_bytes(4, "big") + b"free"
    assert int.from_bytes(header[8:16], "big") == size - base
    assert b"".join(clip.read(size - 4)) == bytes(4)


def test_clip_decodes_with_pyav_when_available() -> None:
    """PyAV is a dev dependency: a missing one fails here rather than skipping the real decode."""
    import av

    data = Clip("decoded").to_bytes()
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = len(list(container.decode(video=0)))
    assert frames == 24 * DEFAULT_SECONDS


@pytest.mark.parametrize("seconds", SECONDS)
def test_each_duration_has_a_clip_that_long(tmp_path: Path, seconds: int) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(Clip("task", base=base_clip(seconds)).to_bytes())
    assert inspect(path).duration_s == seconds


def test_the_whole_set_stays_small() -> None:
    assert sum(len(base_clip(s)) for s in SECONDS) < 400_000


def test_out_of_range_durations_get_the_nearest_clip() -> None:
    assert base_clip(1) == base_clip(SECONDS[0])
    assert base_clip(60) == base_clip(SECONDS[-1])
