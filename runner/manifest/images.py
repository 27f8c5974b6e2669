"""Input images — a local file, an https URL or a ``data:`` URI: sniffed, measured, checked, encoded once.

Everything here is offline, so ``previz validate`` can refuse a bad image before a cent is spent.
A file's type is decided by its bytes, never its name (a ``.png`` full of text is caught here, not
by a provider at 3 a.m.); Pillow reads only the header for the size. Files and data URIs travel as
data URIs, so their size limit is the provider's limit on the *encoded* URI length. URLs are never
fetched: they must be https (plain http only to loopback hosts, e.g. the simulator).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from runner.errors import InputError
from runner.manifest.limits import LIMITS, MB
from runner.manifest.regular_file import Refused, TooBig, read_regular
from runner.manifest.takes import ImageKind, ImageRef
from runner.netloc import is_loopback as _is_loopback
from runner.textcheck import describe_control, first_control

MIN_RATIO = 0.5
MAX_RATIO = 2.0
#: Files bigger than this are refused unread: far over every provider's data-URI limit.
MAX_FILE_BYTES = 64 * MB
#: Images with more pixels are refused from the header, before decoding (an 8K frame is 33 MP).
MAX_PIXELS = 40_000_000

_ALLOWED = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_OTHER_MAGIC = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_DATA_URI = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL | re.IGNORECASE)
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
#: The three formats accepted, registered up front: opening a format Pillow has not registered yet
#: (WebP is not among its first few) makes it import every plugin it has, ~40 ms of PDF, DDS, TIFF…
_PLUGINS = (JpegImagePlugin, PngImagePlugin, WebPImagePlugin)


class ImageProblem(ValueError):
    """An image that cannot be used; the message names it and says what is allowed."""


def kind_of(source: str) -> ImageKind:
    """How the manifest named the image: ``data:`` URI, URL (any ``scheme://``) or local path."""
    if source[:5].lower() == "data:":
        return ImageKind.DATA
    return ImageKind.URL if _URL.match(source) else ImageKind.FILE


def describe(source: str) -> str:
    """The image's name for messages; a data URI is shortened to its type and length."""
    if kind_of(source) is ImageKind.DATA:
        head = source.split(",", 1)[0]
        return f"{head},… ({len(source)} characters)"
    return source


def sniff(data: bytes) -> str | None:
    """MIME type from the content's magic bytes: JPEG, PNG or WebP, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_uri_length(mime: str, size: int) -> int:
    """Length of ``data:<mime>;base64,…`` for ``size`` bytes: what the provider's limit applies to."""
    return len(f"data:{mime};base64,") + 4 * ((size + 2) // 3)


def url_problem(source: str) -> str | None:
    """Why a URL is refused (None if fine): https only, plain http only to loopback hosts."""
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        return (
            f"image URL {bare} carries a user name or password (user:pass@); "
            "credentials in a manifest end up in logs and ledgers: use a URL that needs none"
        )
    if scheme in ("https", "http") and not parts.hostname:
        return f"image URL {source} has no host"
    if scheme == "https" or (scheme == "http" and _is_loopback(parts.hostname or "")):
        return None
    if scheme == "http":
        return (
            f"image URL {source} uses plain http; use https "
            "(http is allowed only for loopback hosts: localhost, 127.0.0.0/8, ::1)"
        )
    if scheme == "file":
        return f"image {source}: file:// URLs are not accepted; write the path (relative to the manifest)"
    return f"image {source}: unsupported URL scheme '{scheme}' (allowed: https URL, data: URI or local path)"


def size_problem(ref: ImageRef, provider: str) -> str | None:
    """Why ``ref`` is too big for ``provider`` as a data URI (None if it fits or is a URL)."""
    limit = LIMITS[provider].max_data_uri_bytes
    if ref.kind is ImageKind.URL or limit is None or ref.mime is None or ref.size is None:
        return None
    length = data_uri_length(ref.mime, ref.size)
    if length < limit:
        return None
    return (
        f"image {describe(ref.source)} is {_mb(ref.size)}, {_mb(length)} as a data URI; "
        f"{provider} accepts data URIs under {_mb(limit)} (shrink or recompress it, or use an https URL)"
    )


def _mb(n: int) -> str:
    return f"{n / MB:.2f} MB"


def measure(data: bytes, name: str) -> tuple[str, int, int]:
    """(mime, width, height) of an image's bytes; raises ImageProblem if it is not one we accept."""
    mime = sniff(data)
    if mime is None:
        other = next((fmt for magic, fmt in _OTHER_MAGIC if data.startswith(magic)), None)
        found = f"it is {other}" if other else "its content is not an image"
        raise ImageProblem(
            f"image {name} is not a JPEG, PNG or WebP file ({found}; checked by content, not name)"
        )
    fmt = _ALLOWED[mime]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                _decode_whole(img, name, fmt)
    except ImageProblem:
        raise
    except Image.DecompressionBombError:
        raise ImageProblem(f"image {name} is too many pixels to decode (a decompression bomb?)") from None
    except Exception:  # whatever Pillow raises on a header it cannot read
        raise ImageProblem(f"image {name} starts like {fmt} but its header is damaged") from None
    return mime, width, height


def _decode_whole(img: Image.Image, name: str, fmt: str) -> None:
    """Decode every pixel once: a truncated or corrupt file must fail here, not at the provider.

    The pixel cap comes first, so a small file that expands to gigabytes (a decompression bomb)
    is refused from its header without being decoded. Any decoder error is a damaged file:
    Pillow raises OSError, SyntaxError, ValueError or struct.error depending on the format.
    """
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageProblem(
            f"image {name} is {width}×{height} ({width * height / 1e6:.1f} megapixels); at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels are decoded (a decompression bomb?)"
        )
    try:
        img.load()
    except Exception as exc:
        reason = str(exc).split("\n")[0][:120] or type(exc).__name__
        raise ImageProblem(f"image {name} is a damaged or truncated {fmt} file ({reason})") from None


def check_ratio(name: str, width: int, height: int) -> None:
    """Providers take width/height within 0.5–2; report the real size so the fix is obvious."""
    ratio = width / height if height else float("inf")
    if not MIN_RATIO <= ratio <= MAX_RATIO:
        raise ImageProblem(
            f"image {name} is {width}×{height} (ratio {ratio:.2f}); allowed width/height ratio 0.5–2"
        )


def decode_data_uri(source: str) -> tuple[str | None, bytes]:
    """(declared mime or None, bytes) of a base64 ``data:`` URI; ImageProblem if malformed."""
    match = _DATA_URI.match(source)
    if match is None or ";base64" not in match.group(2).lower():
        raise ImageProblem(f"image {describe(source)} must be a base64 data URI: data:image/png;base64,…")
    try:
        data = base64.b64decode("".join(match.group(3).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem(f"image {describe(source)} is not valid base64") from None
    declared = match.group(1).strip().lower() or None
    return (_MIME_ALIASES.get(declared, declared) if declared else None), data


def read_file(path: Path, source: str) -> bytes:
    """The bytes of a local image, or an ImageProblem saying why it cannot be read.

    Only a regular file under MAX_FILE_BYTES is read (:mod:`runner.manifest.regular_file`): a FIFO, a
    device such as ``/dev/zero`` or a symlink loop is refused by name instead of hanging or
    filling memory.
    """
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except TooBig as why:
        raise ImageProblem(f"image {source} {why}; far over every provider's limit") from None
    except Refused as why:
        raise ImageProblem(f"image {source} {why} ({path})") from None
    except FileNotFoundError:
        raise ImageProblem(f"image {source} not found (looked for {path})") from None
    except PermissionError:
        raise ImageProblem(f"image {source} cannot be read: permission denied ({path})") from None
    except OSError as exc:
        raise ImageProblem(f"image {source} cannot be read: {exc.strerror or exc} ({path})") from None


class ImageChecker:
    """Checks images offline for one manifest; each distinct image is read once (cached by path)."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.reads = 0
        self._cache: dict[str, ImageRef | ImageProblem] = {}
        self._checked: dict[str, ImageRef | ImageProblem] = {}

    def check(self, source: str) -> ImageRef:
        """An ImageRef for ``source``, or ImageProblem. Each spelling is checked once: 10,000 shots
        share a few images, and the answer depends on nothing but the spelling."""
        found = self._checked.get(source)
        if found is None:
            try:
                found = self._check(source)
            except ImageProblem as problem:
                found = problem
            self._checked[source] = found
        if isinstance(found, ImageProblem):
            raise found.with_traceback(None)  # raised again and again: don't let tracebacks pile up
        return found

    def _check(self, source: str) -> ImageRef:
        kind = kind_of(source)
        bad = first_control(source, allow="\n\r\t " if kind is ImageKind.DATA else "")
        if bad is not None:
            where = describe_control(source, bad)
            raise ImageProblem(f"the image path or URL holds a control character ({where}); remove it")
        if kind is ImageKind.URL:
            problem = url_problem(source)
            if problem:
                raise ImageProblem(problem)
            return ImageRef(source=source, kind=kind, content_id=source)
        path = self._resolve(source) if kind is ImageKind.FILE else None
        key = str(path) if path is not None else source
        if key not in self._cache:
            self._cache[key] = self._inspect(source, path)
        found = self._cache[key]
        if isinstance(found, ImageProblem):
            raise found
        return found if found.source == source else _with_source(found, source)

    def _resolve(self, source: str) -> Path:
        """The file's real path: two spellings of one file are read once."""
        # realpath, not Path.resolve: on a symlink loop it returns instead of raising RuntimeError
        return Path(os.path.realpath(self.base_dir / source))

    def _inspect(self, source: str, path: Path | None) -> ImageRef | ImageProblem:
        try:
            self.reads += 1
            if path is not None:
                declared, data = None, read_file(path, source)
            else:
                declared, data = decode_data_uri(source)
            mime, width, height = measure(data, describe(source))
            if declared is not None and declared != mime:
                raise ImageProblem(
                    f"image {describe(source)} says {declared} but holds {_ALLOWED[mime]} data"
                )
            check_ratio(describe(source), width, height)
        except ImageProblem as problem:
            return problem
        kind = ImageKind.FILE if path is not None else ImageKind.DATA
        digest = hashlib.sha256(data).hexdigest()
        return ImageRef(
            source, kind, digest, path=path, mime=mime, width=width, height=height, size=len(data)
        )


def _with_source(ref: ImageRef, source: str) -> ImageRef:
    return ImageRef(source, ref.kind, ref.content_id, ref.path, ref.mime, ref.width, ref.height, ref.size)


class ImageEncoder:
    """What goes on the wire for an image: the https URL as-is, or a ``data:`` URI.

    Each distinct content is read and encoded once per run (cached by content_id), however many
    takes use it. A file that changed since the manifest was checked is refused: its takes' keys
    were computed from the old bytes.
    """

    def __init__(self) -> None:
        self.encoded = 0
        self._cache: dict[str, str] = {}

    def encode(self, ref: ImageRef) -> str:
        if ref.kind is ImageKind.URL:
            return ref.source
        uri = self._cache.get(ref.content_id)
        if uri is None:
            uri = self._cache[ref.content_id] = self._data_uri(ref)
            self.encoded += 1
        return uri

    def _data_uri(self, ref: ImageRef) -> str:
        try:
            data = read_file(ref.path, ref.source) if ref.path is not None else decode_data_uri(ref.source)[1]
        except ImageProblem as problem:
            raise InputError(str(problem)) from None
        if hashlib.sha256(data).hexdigest() != ref.content_id:
            raise InputError(
                f"image {describe(ref.source)} changed since the manifest was checked; run again"
            )
        mime = ref.mime or sniff(data) or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
