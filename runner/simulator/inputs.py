"""Field checks the three providers share: integers in ranges, strings with limits, image references.

Why strict: the simulator is the far side of the wire, and it is only useful if a request the
real API would refuse is refused here too. Each check raises :class:`Invalid` naming the field;
each provider turns that into its own error shape. Image references are checked by form only —
the simulator never fetches anything (the sources' example images live on the public internet).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(?P<payload>[A-Za-z0-9+/=\s]+)$", re.DOTALL)
_RAW_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]{16,}={0,2}$")


class Invalid(Exception):
    """A request field the provider would refuse."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def optional_int(
    body: Mapping[str, Any],
    field: str,
    *,
    low: int,
    high: int,
    default: int | None,
    choices: Sequence[int] = (),
) -> int | None:
    """An integer field within [low, high] (or one of ``choices``), or ``default`` when absent."""
    if field not in body:
        return default
    value = body[field]
    if not _is_int(value):
        raise Invalid(field, f"{field} must be an integer, got {value!r}", "type")
    if choices and value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise Invalid(field, f"{field} must be one of {allowed}, got {value}", "enum")
    if not low <= value <= high:
        raise Invalid(field, f"{field} must be between {low} and {high}, got {value}", "range")
    return int(value)


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, as JavaScript (and Runway) count."""
    return len(text.encode("utf-16-le")) // 2


def optional_str(
    body: Mapping[str, Any],
    field: str,
    *,
    max_len: int,
    min_len: int = 0,
    required: bool = False,
    utf16: bool = False,
) -> str | None:
    """A string field with a length limit (characters, or UTF-16 units)."""
    if field not in body or body[field] is None:
        if required:
            raise Invalid(field, f"{field} is required", "required")
        return None
    value = body[field]
    if not isinstance(value, str):
        raise Invalid(field, f"{field} must be a string", "type")
    length = utf16_units(value) if utf16 else len(value)
    if length < min_len:
        raise Invalid(field, f"{field} must be at least {min_len} characters", "too_small")
    if length > max_len:
        unit = "UTF-16 code units" if utf16 else "characters"
        raise Invalid(field, f"{field} must be at most {max_len} {unit}, got {length}", "too_big")
    return value


def one_of(body: Mapping[str, Any], field: str, choices: Sequence[str], *, default: str | None) -> str | None:
    if field not in body:
        return default
    value = body[field]
    if value not in choices:
        raise Invalid(field, f"{field} must be one of {', '.join(choices)}, got {value!r}", "enum")
    return str(value)


def is_loopback(host: str | None) -> bool:
    """The far side keeps its own reading of "loopback": it imports nothing from the runner."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_url(field: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return  # test servers on this machine; the real APIs would not reach them anyway
    raise Invalid(field, f"{field} must be an https URL or a data URI", "url")


def _check_data_uri(field: str, value: str, max_bytes: int | None) -> None:
    if max_bytes is not None and len(value.encode()) >= max_bytes:
        raise Invalid(field, f"{field}: data URI must be under {max_bytes // (1024 * 1024)} MB", "too_big")
    match = _DATA_URI.match(value)
    if match is None:
        raise Invalid(field, f"{field}: data URI must be data:image/(png|jpeg|webp);base64,…", "data_uri")
    try:
        base64.b64decode("".join(match["payload"].split()), validate=True)
    except binascii.Error:
        raise Invalid(field, f"{field}: data URI payload is not valid base64", "data_uri") from None


def check_image(field: str, value: object, *, max_data_uri: int | None = None, runware: bool = False) -> str:
    """An image reference: https URL, data URI (optionally size-capped), or — Runware only — a raw
    base64 string or the UUID of an uploaded image. Returns it unchanged."""
    if not isinstance(value, str) or not value:
        raise Invalid(field, f"{field} must be a non-empty string", "type")
    if value.startswith("data:"):
        _check_data_uri(field, value, max_data_uri)
    elif "://" in value or not runware:
        _check_url(field, value)
    elif not (_is_uuid(value) or _RAW_BASE64.match(value)):
        raise Invalid(field, f"{field} must be a URL, data URI, base64 image or image UUID", "image")
    return value


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_uuid_v4(value: object) -> bool:
    """Runware's taskUUID rule: a UUID string of version 4."""
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()
