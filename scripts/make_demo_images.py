"""Draw the demo manifest's input images (small JPEG, PNG and WebP files under manifests/images/).

Why generated: the demo must run on a fresh clone with no downloads and no licensed pictures, and
its images must pass the same checks as real ones (real JPEG/PNG/WebP bytes, width/height within
0.5–2, well under the data-URI limit). Run from the project root; the output is committed.

    .venv/bin/python scripts/make_demo_images.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "manifests" / "images"
RGB = tuple[int, int, int]


def gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    """A vertical two-colour gradient: a sky, a cave, a glasshouse."""
    width, height = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / max(height - 1, 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    return img


def harbor_dawn() -> Image.Image:
    img = gradient((320, 180), (250, 170, 120), (60, 80, 130))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 120, 320, 180], fill=(30, 50, 90))
    draw.ellipse([140, 80, 180, 120], fill=(255, 220, 150))
    draw.rectangle([250, 60, 264, 122], fill=(230, 230, 230))
    draw.polygon([(246, 60), (268, 60), (257, 48)], fill=(190, 40, 40))
    return img


def mountains() -> Image.Image:
    img = gradient((320, 180), (140, 180, 220), (220, 230, 240))
    draw = ImageDraw.Draw(img)
    draw.polygon([(0, 180), (90, 60), (170, 180)], fill=(70, 80, 95))
    draw.polygon([(110, 180), (210, 40), (320, 180)], fill=(90, 100, 115))
    draw.polygon([(190, 68), (210, 40), (230, 68)], fill=(245, 245, 250))
    return img


def dragon_close() -> Image.Image:
    img = mountains()
    draw = ImageDraw.Draw(img)
    draw.ellipse([100, 40, 240, 150], fill=(40, 90, 50))
    draw.polygon([(150, 110), (170, 140), (190, 110)], fill=(240, 240, 230))
    return img


def ice_cavern() -> Image.Image:
    img = gradient((320, 180), (20, 40, 80), (150, 210, 240))
    draw = ImageDraw.Draw(img)
    for x in range(0, 320, 40):
        draw.polygon([(x, 0), (x + 20, 50), (x + 40, 0)], fill=(200, 235, 255))
    draw.rectangle([0, 150, 320, 180], fill=(230, 245, 255))
    return img


def glasshouse() -> Image.Image:
    img = gradient((320, 240), (200, 230, 210), (90, 130, 100))
    draw = ImageDraw.Draw(img)
    for x in range(0, 320, 32):
        draw.line([(x, 0), (x, 240)], fill=(60, 70, 60), width=2)
    draw.ellipse([130, 120, 190, 180], fill=(120, 80, 50))
    return img


def gorge() -> Image.Image:
    """2:1, the widest plate a provider takes: the shot asks for 21:9, within 25 % of it (no warning)."""
    img = gradient((320, 160), (90, 90, 120), (180, 170, 200))
    draw = ImageDraw.Draw(img)
    draw.polygon([(0, 0), (80, 160), (0, 160)], fill=(60, 60, 80))
    draw.polygon([(320, 0), (240, 160), (320, 160)], fill=(60, 60, 80))
    draw.line([(0, 40), (320, 70)], fill=(30, 30, 30), width=2)
    draw.rectangle([140, 52, 180, 76], fill=(200, 120, 40))
    return img


IMAGES: dict[str, tuple[Callable[[], Image.Image], dict[str, object]]] = {
    "harbor-dawn.jpg": (harbor_dawn, {"quality": 80}),
    "mountains.png": (mountains, {"optimize": True}),
    "dragon-close.png": (dragon_close, {"optimize": True}),
    "ice-cavern.webp": (ice_cavern, {"quality": 75}),
    "glasshouse.jpg": (glasshouse, {"quality": 80}),
    "gorge.webp": (gorge, {"quality": 75}),
}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (draw, options) in IMAGES.items():
        img = draw()
        if name.endswith(".png"):
            img = img.quantize(colors=64)
        path = OUT / name
        img.save(path, **options)  # type: ignore[arg-type]
        print(f"{path.relative_to(OUT.parent.parent)}: {img.width}×{img.height}, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
