"""Fixtures for manifest tests: real images drawn with Pillow, and the CLI run in-process."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from runner.cli.main import main


def draw(path: Path, size: tuple[int, int] = (320, 180), fmt: str | None = None) -> Path:
    """A small real image at ``path`` (format from the extension unless ``fmt`` is given)."""
    Image.new("RGB", size, (40, 90, 160)).save(path, format=fmt)
    return path


@pytest.fixture(scope="session")
def image_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("images")
    draw(bank / "a.jpg")
    draw(bank / "b.png")
    draw(bank / "c.webp")
    draw(bank / "strip.png", (3000, 1000))
    (bank / "fake.png").write_text("hello, I am not a picture\n")
    return bank


@pytest.fixture
def images(tmp_path: Path, image_bank: Path) -> Path:
    """A folder with a.jpg, b.png, c.webp (320×180), strip.png (3000×1000) and a fake fake.png."""
    for source in image_bank.iterdir():
        shutil.copyfile(source, tmp_path / source.name)
    return tmp_path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``previz ARGS…`` in-process; returns exit code and captured output."""

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
