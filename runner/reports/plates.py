"""Each shot's first frame (its plate) as a small inline JPEG, for the contact sheet.

Why inline: a take is judged against its plate, and ``report.html`` must work from the file system,
copied or zipped without the manifest's folder, and never reach the network. So each local plate is
read once, scaled to a thumbnail and embedded as a ``data:`` URI (a few tens of KB a shot). A plate
given as an https URL is not fetched — the page names it instead; one that cannot be read now (moved
since the run, or no manifest found) is said to be missing, never an error.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from runner.manifest.document import Shot
from runner.manifest.takes import ImageKind, ImageRef

#: Long side of a thumbnail: sharp beside a 280–400 px take card on a 2× screen.
THUMB_PX = 480
#: A plate larger than this is not decoded for a thumbnail (the manifest's own cap is far above).
MAX_PIXELS = 64_000_000
#: Distinct plates shown at most: a 10,000-shot sheet must not spend minutes (and megabytes) on them.
MAX_PLATES = 400


@dataclass(frozen=True)
class Plate:
    src: str | None  # a data: URI, or None when there is nothing to show
    note: str  # what the image is (its name), or why it is not shown


def plates(shots: Iterable[Shot]) -> dict[str, Plate]:
    """Shot id → its plate; each distinct image file read once."""
    cache: dict[str, Plate] = {}
    out: dict[str, Plate] = {}
    for shot in shots:
        ref = shot.image
        if ref.content_id not in cache:
            many = len(cache) >= MAX_PLATES
            cache[ref.content_id] = (
                Plate(None, f"more than {MAX_PLATES} plates: not shown") if many else _plate(ref)
            )
        out[shot.id] = cache[ref.content_id]
    return out


def _plate(ref: ImageRef) -> Plate:
    if ref.kind is ImageKind.URL:
        return Plate(None, f"{ref.source} (not fetched: the page stays offline)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            return _thumbnail(ref)
    except (OSError, ValueError, IndexError, UnidentifiedImageError, Image.DecompressionBombError):
        return Plate(None, f"{ref.source if ref.kind is ImageKind.FILE else 'image'} (cannot be read now)")


def _thumbnail(ref: ImageRef) -> Plate:
    if ref.kind is ImageKind.FILE and ref.path is not None:
        image, name = Image.open(ref.path), ref.path.name
    else:
        payload = ref.source.split(",", 1)[1]
        image, name = Image.open(io.BytesIO(base64.b64decode(payload))), "inline image"
    with image:
        if image.width * image.height > MAX_PIXELS:
            return Plate(None, f"{name} (too large to show)")
        image.thumbnail((THUMB_PX, THUMB_PX))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=82)
    return Plate("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), name)
