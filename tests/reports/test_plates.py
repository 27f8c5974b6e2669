"""Each shot's plate on the contact sheet: a small inline JPEG, URLs named but never fetched."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from runner.manifest.document import Shot
from runner.manifest.takes import ImageKind, ImageRef
from runner.reports import plates


def _shot(sid: str, image: ImageRef) -> Shot:
    return Shot(sid, "p", image, None, 5, "16:9", "runway", "gen4_turbo", None, 1, ())


def _file(tmp_path: Path, name: str, size: tuple[int, int]) -> ImageRef:
    path = tmp_path / name
    Image.new("RGB", size, (200, 90, 40)).save(path)
    return ImageRef(str(path), ImageKind.FILE, name, path=path)


def test_a_local_plate_is_a_small_inline_jpeg_and_a_url_is_named_not_fetched(tmp_path: Path) -> None:
    big = _file(tmp_path, "big.png", (1920, 1080))
    url = ImageRef("https://example.com/plate.jpg", ImageKind.URL, "https://example.com/plate.jpg")
    gone = ImageRef("images/gone.jpg", ImageKind.FILE, "gone", path=tmp_path / "gone.jpg")
    shown = plates.plates([_shot("a", big), _shot("b", url), _shot("c", gone), _shot("d", big)])
    assert shown["a"].src is not None and shown["a"].src.startswith("data:image/jpeg;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(shown["a"].src.split(",", 1)[1])))
    assert max(thumb.size) == plates.THUMB_PX and thumb.size[0] / thumb.size[1] == pytest.approx(16 / 9, 0.01)
    assert shown["d"] is shown["a"], "one image, read once"
    assert shown["b"].src is None and "not fetched" in shown["b"].note
    assert shown["c"].src is None and "cannot be read now" in shown["c"].note


def test_past_the_cap_plates_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plates, "MAX_PLATES", 2)
    refs = [_file(tmp_path, f"p{i}.png", (64, 36)) for i in range(3)]
    shown = plates.plates([_shot(f"s{i}", r) for i, r in enumerate(refs)])
    assert [p.src is not None for p in shown.values()] == [True, True, False]
    assert "more than 2 plates" in shown["s2"].note
