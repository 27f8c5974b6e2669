"""runner/engine/mp4.py: the box walk accepts whole MP4s (ours, hand-built, 32/64-bit, v0/v1), no other.

Files are built here box by box, so every figure the walk must read back is an input of the test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runner.engine.mp4 import MAX_MOOV, Mp4Error, duration_mismatch, inspect
from runner.simulator.mp4 import DEFAULT_SECONDS, Clip, base_clip

FTYP_PAYLOAD = b"isom" + bytes(4) + b"isomiso2"


def box(kind: bytes, payload: bytes = b"", *, large: bool = False, to_end: bool = False) -> bytes:
    if to_end:
        return bytes(4) + kind + payload
    if large:
        return (1).to_bytes(4, "big") + kind + (16 + len(payload)).to_bytes(8, "big") + payload
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    times = bytes(16) if version else bytes(8)
    width = 8 if version else 4
    body = bytes([version, 0, 0, 0]) + times + timescale.to_bytes(4, "big") + duration.to_bytes(width, "big")
    return box(b"mvhd", body + bytes(80))  # rate, volume, matrix, next track id: not read


def tkhd(width: int, height: int, version: int = 0) -> bytes:
    head = bytes([version, 0, 0, 7]) + (bytes(32) if version else bytes(20))
    fixed = (width << 16).to_bytes(4, "big") + (height << 16).to_bytes(4, "big")
    return box(b"tkhd", head + bytes(8 + 8 + 36) + fixed)


def trak(handler: bytes, width: int, height: int, version: int = 0) -> bytes:
    hdlr = box(b"hdlr", bytes(8) + handler + bytes(12) + b"\0")
    return box(b"trak", tkhd(width, height, version) + box(b"mdia", box(b"mdhd", bytes(24)) + hdlr))


def mp4(
    *, seconds: int = 5, width: int = 1280, height: int = 720, version: int = 0, mdat: bytes | None = None
) -> bytes:
    timescale = 600
    moov = box(b"moov", mvhd(timescale, seconds * timescale, version) + trak(b"vide", width, height, version))
    return box(b"ftyp", FTYP_PAYLOAD) + moov + (mdat if mdat is not None else box(b"mdat", bytes(100)))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return path


# -- accepted -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize(("seconds", "width", "height"), [(5, 1280, 720), (10, 720, 1280), (2, 960, 960)])
def test_duration_and_size_are_read_from_moov(
    tmp_path: Path, version: int, seconds: int, width: int, height: int
) -> None:
    info = inspect(_write(tmp_path, mp4(seconds=seconds, width=width, height=height, version=version)))
    assert (info.duration_s, info.width, info.height) == (seconds, width, height)
    assert info.boxes == ("ftyp", "moov", "mdat")


def test_the_first_video_track_gives_the_size_not_the_first_track(tmp_path: Path) -> None:
    moov = box(
        b"moov", mvhd(1000, 5000) + trak(b"soun", 0, 0) + trak(b"vide", 640, 360) + trak(b"vide", 1, 1)
    )
    info = inspect(_write(tmp_path, box(b"ftyp", FTYP_PAYLOAD) + box(b"mdat", b"x") + moov))
    assert (info.width, info.height) == (640, 360)


def test_a_clip_without_video_has_no_size(tmp_path: Path) -> None:
    moov = box(b"moov", mvhd(1000, 5000) + trak(b"soun", 0, 0))
    info = inspect(_write(tmp_path, box(b"ftyp", FTYP_PAYLOAD) + moov + box(b"mdat", b"x")))
    assert (info.duration_s, info.width, info.height) == (5.0, None, None)


def test_an_unknown_duration_is_none(tmp_path: Path) -> None:
    moov = box(b"moov", mvhd(1000, 0xFFFFFFFF) + trak(b"vide", 8, 8))
    assert inspect(_write(tmp_path, box(b"ftyp", FTYP_PAYLOAD) + moov + box(b"mdat"))).duration_s is None


@pytest.mark.parametrize("mdat", [box(b"mdat", bytes(50), large=True), box(b"mdat", bytes(50), to_end=True)])
def test_a_64_bit_or_to_the_end_mdat_tiles_the_file(tmp_path: Path, mdat: bytes) -> None:
    assert inspect(_write(tmp_path, mp4(mdat=mdat))).boxes == ("ftyp", "moov", "mdat")


def test_the_simulators_clips_pass_with_the_figures_they_were_made_with(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_clip.py"
    spec = importlib.util.spec_from_file_location("make_clip", path)
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    for data in (base_clip(), Clip("task-1").to_bytes(), Clip("task-2", pad_to=3_000_000).to_bytes()):
        info = inspect(_write(tmp_path, data))
        assert (info.duration_s, info.width, info.height) == (DEFAULT_SECONDS, maker.WIDTH, maker.HEIGHT)


# -- refused --------------------------------------------------------------------------------------------

FTYP24 = box(b"ftyp", FTYP_PAYLOAD)
MOOV = box(b"moov", mvhd(600, 3000) + trak(b"vide", 64, 64))
REFUSED = {
    "24-byte ftyp then zeros": FTYP24 + bytes(4096),
    "ftyp alone": FTYP24,
    "empty": b"",
    "html": b"<!doctype html><title>403 Forbidden</title>",
    "moov first": MOOV + FTYP24 + box(b"mdat"),
    "no moov": FTYP24 + box(b"mdat", bytes(10)),
    "no mdat": FTYP24 + MOOV + box(b"free", bytes(10)),
    "box past the end": FTYP24 + MOOV + (500).to_bytes(4, "big") + b"mdat" + bytes(10),
    "stray tail": FTYP24 + MOOV + box(b"mdat") + b"\0\0\0",
    "size below header": FTYP24 + (4).to_bytes(4, "big") + b"mdat" + MOOV,
    "largesize below header": FTYP24 + MOOV + (1).to_bytes(4, "big") + b"mdat" + (8).to_bytes(8, "big"),
    "largesize cut": FTYP24 + MOOV + (1).to_bytes(4, "big") + b"mdat" + b"\0\0",
    "moov without mvhd": FTYP24 + box(b"moov", trak(b"vide", 64, 64)) + box(b"mdat"),
    "zero timescale": FTYP24 + box(b"moov", mvhd(0, 3000)) + box(b"mdat"),
    "mvhd cut short": FTYP24 + box(b"moov", box(b"mvhd", bytes([0, 0, 0, 0]) + bytes(6))) + box(b"mdat"),
    "mvhd of version 7": FTYP24 + box(b"moov", box(b"mvhd", bytes([7]) + bytes(99))) + box(b"mdat"),
    "moov child past its end": FTYP24 + box(b"moov", (200).to_bytes(4, "big") + b"mvhd") + box(b"mdat"),
    "tkhd cut short": FTYP24 + box(b"moov", mvhd(600, 1) + box(b"trak", box(b"tkhd", bytes(20)) + box(
        b"mdia", box(b"hdlr", bytes(8) + b"vide" + bytes(13))))) + box(b"mdat"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_is_not_a_whole_mp4_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(Mp4Error):
        inspect(_write(tmp_path, REFUSED[name]))


def test_every_cut_of_a_clip_is_refused(tmp_path: Path) -> None:
    whole = mp4()
    inspect(_write(tmp_path, whole))
    for length in range(len(whole)):
        with pytest.raises(Mp4Error):
            inspect(_write(tmp_path, whole[:length]))


def test_an_oversized_moov_is_refused_unread(tmp_path: Path) -> None:
    header = (8 + MAX_MOOV + 1).to_bytes(4, "big") + b"moov"
    path = tmp_path / "clip.mp4"
    with path.open("wb") as fh:
        fh.write(FTYP24 + header)
        fh.truncate(len(FTYP24) + 8 + MAX_MOOV + 1)  # sparse: no 16 MB written
        fh.seek(0, 2)
        fh.write(box(b"mdat"))
    with pytest.raises(Mp4Error, match="moov box of"):
        inspect(path)


@pytest.mark.parametrize(
    ("actual", "requested", "flagged"),
    [(5.0, 5, False), (5.9, 5, False), (4.0, 5, False), (6.01, 5, True), (2.0, 5, True), (None, 5, False)],
)
def test_duration_mismatch_is_more_than_a_second_off(
    actual: float | None, requested: int, flagged: bool
) -> None:
    assert duration_mismatch(actual, requested) is flagged
