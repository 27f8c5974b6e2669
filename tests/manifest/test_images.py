"""Image checks on real JPEG/PNG/WebP files drawn with Pillow, URLs, data URIs, and encoding once."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

import runner.manifest.images
from runner.errors import InputError
from runner.manifest.images import (
    ImageChecker,
    ImageEncoder,
    ImageProblem,
    data_uri_length,
    size_problem,
    url_problem,
)
from runner.manifest.limits import LIMITS
from runner.manifest.takes import ImageKind
from tests.manifest.conftest import Result, draw


@pytest.mark.parametrize(
    ("name", "mime"), [("a.jpg", "image/jpeg"), ("b.png", "image/png"), ("c.webp", "image/webp")]
)
def test_real_images_are_measured_by_content(images: Path, name: str, mime: str) -> None:
    ref = ImageChecker(images).check(name)
    data = (images / name).read_bytes()
    assert (ref.kind, ref.mime, ref.width, ref.height, ref.size) == (
        ImageKind.FILE,
        mime,
        320,
        180,
        len(data),
    )
    assert ref.content_id == hashlib.sha256(data).hexdigest()
    assert ref.path == (images / name).resolve()


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    draw(tmp_path / "really-jpeg.png", fmt="JPEG")
    assert ImageChecker(tmp_path).check("really-jpeg.png").mime == "image/jpeg"


def test_text_file_named_png_is_refused(images: Path) -> None:
    with pytest.raises(ImageProblem, match=r"fake\.png is not a JPEG, PNG or WebP file"):
        ImageChecker(images).check("fake.png")


def test_gif_is_named_as_such(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32)).save(tmp_path / "x.gif")
    with pytest.raises(ImageProblem, match="it is GIF"):
        ImageChecker(tmp_path).check("x.gif")


def test_damaged_header_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageProblem, match="starts like PNG but its header is damaged"):
        ImageChecker(tmp_path).check("broken.png")


def test_strip_reports_real_size_and_ratio(images: Path) -> None:
    with pytest.raises(ImageProblem) as caught:
        ImageChecker(images).check("strip.png")
    assert str(caught.value) == "image strip.png is 3000×1000 (ratio 3.00); allowed width/height ratio 0.5–2"


@pytest.mark.parametrize(
    ("size", "ok"), [((200, 100), True), ((100, 200), True), ((201, 100), False), ((99, 200), False)]
)
def test_ratio_bounds_are_inclusive(tmp_path: Path, size: tuple[int, int], ok: bool) -> None:
    draw(tmp_path / "x.png", size)
    if ok:
        ImageChecker(tmp_path).check("x.png")
    else:
        with pytest.raises(ImageProblem, match=r"allowed width/height ratio 0\.5–2"):
            ImageChecker(tmp_path).check("x.png")


def test_each_distinct_file_is_read_once(images: Path) -> None:
    checker = ImageChecker(images)
    refs = [checker.check(source) for source in ("a.jpg", "./a.jpg", f"{images}/a.jpg", "a.jpg")]
    assert checker.reads == 1
    assert {ref.content_id for ref in refs} == {refs[0].content_id}
    assert [ref.source for ref in refs][:2] == ["a.jpg", "./a.jpg"]


def test_problems_are_cached_too(images: Path) -> None:
    checker = ImageChecker(images)
    for _ in range(3):
        with pytest.raises(ImageProblem):
            checker.check("strip.png")
    assert checker.reads == 1


def test_missing_and_directory(images: Path) -> None:
    (images / "folder.png").mkdir()
    with pytest.raises(ImageProblem, match=r"nope\.jpg not found \(looked for .*nope\.jpg\)"):
        ImageChecker(images).check("nope.jpg")
    with pytest.raises(ImageProblem, match="is a directory"):
        ImageChecker(images).check("folder.png")


def test_unreadable_file(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, flags: int) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)  # tests run as root: chmod would not do
    with pytest.raises(ImageProblem, match="cannot be read: permission denied"):
        ImageChecker(images).check("a.jpg")


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def test_data_uri_is_decoded_and_checked(images: Path) -> None:
    uri = _data_uri(images / "b.png", "image/png")
    ref = ImageChecker(images).check(uri)
    assert (ref.kind, ref.mime, ref.width, ref.height) == (ImageKind.DATA, "image/png", 320, 180)
    assert ref.content_id == hashlib.sha256((images / "b.png").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("data:image/png,abc", "must be a base64 data URI"),
        ("data:image/png;base64,@@@", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"plain text").decode(), "not a JPEG, PNG or WebP"),
    ],
)
def test_bad_data_uris(tmp_path: Path, uri: str, words: str) -> None:
    with pytest.raises(ImageProblem, match=words):
        ImageChecker(tmp_path).check(uri)


def test_data_uri_whose_type_lies(images: Path) -> None:
    with pytest.raises(ImageProblem, match="says image/png but holds JPEG data"):
        ImageChecker(images).check(_data_uri(images / "a.jpg", "image/png"))


def test_too_big_data_uri_is_over_the_provider_limit(tmp_path: Path) -> None:
    """~4 MB of noise is over 5 MB once base64-encoded: refused before anything is sent."""
    noise = Image.frombytes("RGB", (1200, 1100), os.urandom(1200 * 1100 * 3))
    noise.save(tmp_path / "noise.png", compress_level=0)
    ref = ImageChecker(tmp_path).check(_data_uri(tmp_path / "noise.png", "image/png"))
    assert ref.size is not None
    assert data_uri_length("image/png", ref.size) >= 5 * 1024 * 1024
    message = size_problem(ref, "runware")
    assert message is not None
    assert "runware accepts data URIs under 5.00 MB" in message
    assert message.startswith("image data:image/png;base64,… (")


def test_size_limit_is_on_the_encoded_length(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = ImageChecker(images).check("a.jpg")
    assert ref.size is not None
    length = data_uri_length("image/jpeg", ref.size)
    assert length == len(ImageEncoder().encode(ref))
    limits = {name: dataclasses.replace(lim, max_data_uri_bytes=length + 1) for name, lim in LIMITS.items()}
    monkeypatch.setattr(runner.manifest.images, "LIMITS", limits)
    assert size_problem(ref, "runway") is None
    limits["runway"] = dataclasses.replace(limits["runway"], max_data_uri_bytes=length)
    assert size_problem(ref, "runway") is not None


def test_too_big_file_is_reported_at_its_line(
    images: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {name: dataclasses.replace(lim, max_data_uri_bytes=1000) for name, lim in LIMITS.items()}
    monkeypatch.setattr(runner.manifest.images, "LIMITS", limits)
    text = "version: 1\nname: h\nprovider: runway\nshots:\n  - id: d\n    prompt: A\n    image: a.jpg\n"
    (images / "m.yaml").write_text(text)
    result = cli("validate", str(images / "m.yaml"))
    assert result.code == 2
    assert f"{images / 'm.yaml'}:7:12: shots[0].image: image a.jpg is" in result.err
    assert "runway accepts data URIs under 0.00 MB" in result.err


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a.jpg", "http://127.0.0.1:8765/a.png", "http://localhost/a.png", "http://[::1]/a.png",
     "http://127.8.9.10/x.webp"],
)  # fmt: skip
def test_accepted_urls(url: str) -> None:
    assert url_problem(url) is None
    ref = ImageChecker(Path(".")).check(url)
    assert (ref.kind, ref.content_id) == (ImageKind.URL, url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.com/a.jpg", "plain http"),
        ("http://10.0.0.1/a.jpg", "plain http"),
        ("http://localhost.evil.com/a.jpg", "plain http"),
        ("file:///etc/passwd", "file:// URLs are not accepted"),
        ("ftp://example.com/a.jpg", "unsupported URL scheme 'ftp'"),
        ("https:///a.jpg", "has no host"),
    ],
)
def test_refused_urls(url: str, words: str) -> None:
    with pytest.raises(ImageProblem, match=words):
        ImageChecker(Path(".")).check(url)


def test_encoder_passes_urls_and_encodes_each_content_once(images: Path) -> None:
    checker, encoder = ImageChecker(images), ImageEncoder()
    url = checker.check("https://example.com/a.jpg")
    assert encoder.encode(url) == "https://example.com/a.jpg"
    first, again = checker.check("a.jpg"), checker.check("./a.jpg")
    uri = encoder.encode(first)
    assert uri.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == (images / "a.jpg").read_bytes()
    assert encoder.encode(again) is uri
    data = checker.check(_data_uri(images / "a.jpg", "image/jpg"))
    assert encoder.encode(data) == uri
    assert encoder.encoded == 1


def test_encoder_refuses_a_file_changed_since_check(images: Path) -> None:
    ref = ImageChecker(images).check("a.jpg")
    draw(images / "a.jpg", (300, 200))
    with pytest.raises(InputError, match="changed since the manifest was checked"):
        ImageEncoder().encode(ref)
