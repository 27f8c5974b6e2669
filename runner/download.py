"""Streamed, verified downloads: a clip is done only when a whole, real MP4 is on disk.

The body is streamed to ``<name>.part`` in fixed-size chunks (memory stays flat whatever the clip
size) while its sha256 is computed; then the size is checked against Content-Length, the MP4
signature (an ``ftyp`` box first) is checked; the file is fsynced as written, then renamed into place. A short
body is resumed with a Range request where the server offers one, else fetched again. A URL that
answers 403/404/410 has expired: :class:`~runner.errors.ExpiredURLError` tells the caller to ask
the provider for a fresh one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiofiles
import aiofiles.os
import aiohttp
import anyio
import anyio.to_thread

from runner.errors import DownloadError, ExpiredURLError, NotSentError, TransientError

CHUNK = 256 * 1024
EXPIRED = frozenset({403, 404, 410})
MP4_BRANDS = (b"ftyp",)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str


def redact_url(url: str) -> str:
    """The URL without its query string (signed URLs carry tokens there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _Part:
    """The growing ``.part`` file and the hash of what it holds so far."""

    def __init__(self, dest: Path) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.hasher = hashlib.sha256()
        self.size = 0
        self.total: int | None = None


async def download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    provider: str,
    take: str,
    client_timeout: aiohttp.ClientTimeout | None = None,
    max_resumes: int = 3,
) -> Downloaded:
    """Fetch ``url`` to ``dest``; raise ExpiredURLError, TransientError or DownloadError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part(dest)
    try:
        for _ in range(max_resumes + 1):
            await _fetch(session, url, part, provider=provider, take=take, client_timeout=client_timeout)
            if part.total is None or part.size >= part.total:
                break
        return await _finish(part, dest, url=url, provider=provider, take=take)
    except BaseException:
        with anyio.CancelScope(shield=True):  # also on a hard stop: leave no half-written clip behind
            await _remove(part.path)
        raise


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    part: _Part,
    *,
    provider: str,
    take: str,
    client_timeout: aiohttp.ClientTimeout | None,
) -> None:
    headers = {"Range": f"bytes={part.size}-"} if part.size else {}
    shown = redact_url(url)
    try:
        async with session.get(url, headers=headers, timeout=client_timeout) as resp:
            _check_status(resp, provider=provider, take=take, url=shown)
            if part.size and resp.status != 206:
                _restart(part)  # no Range support: start over
            if part.total is None:
                part.total = _total_length(resp, part.size)
            await _stream(resp, part)
    except aiohttp.ClientConnectorError as exc:
        raise NotSentError(f"cannot connect: {exc}", provider=provider, take=take, url=shown) from exc
    except aiohttp.ClientPayloadError as exc:
        if part.total is None:  # no length to resume against: only a fresh, whole download will do
            raise TransientError("download cut short", provider=provider, take=take, url=shown) from exc
        return  # body cut short: the caller resumes with Range
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(
            f"download interrupted: {type(exc).__name__}", provider=provider, take=take, url=shown
        ) from exc


def _check_status(resp: aiohttp.ClientResponse, *, provider: str, take: str, url: str) -> None:
    if resp.status in EXPIRED:
        raise ExpiredURLError("result URL expired", provider=provider, status=resp.status, take=take, url=url)
    if resp.status >= 400:
        raise TransientError("download failed", provider=provider, status=resp.status, take=take, url=url)


def _restart(part: _Part) -> None:
    part.hasher = hashlib.sha256()
    part.size = 0
    part.total = None


def _total_length(resp: aiohttp.ClientResponse, already: int) -> int | None:
    if resp.status == 206:
        content_range = resp.headers.get("Content-Range", "")
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return resp.content_length if resp.content_length is not None else None


async def _stream(resp: aiohttp.ClientResponse, part: _Part) -> None:
    async with aiofiles.open(part.path, "ab" if part.size else "wb") as fh:
        async for chunk in resp.content.iter_chunked(CHUNK):
            part.hasher.update(chunk)
            part.size += len(chunk)
            await fh.write(chunk)
        await fh.flush()
        await anyio.to_thread.run_sync(os.fsync, fh.fileno())


async def _finish(part: _Part, dest: Path, *, url: str, provider: str, take: str) -> Downloaded:
    shown = redact_url(url)
    if part.total is not None and part.size != part.total:
        raise DownloadError(
            f"{provider} · take {take} · {shown}: got {part.size} of {part.total} bytes after resuming"
        )
    if part.size < 12:
        raise DownloadError(f"{provider} · take {take} · {shown}: empty or tiny file ({part.size} bytes)")
    await _check_signature(part.path, provider=provider, take=take, url=shown)
    await aiofiles.os.replace(part.path, dest)
    return Downloaded(path=dest, bytes=part.size, sha256=part.hasher.hexdigest())


async def _check_signature(path: Path, *, provider: str, take: str, url: str) -> None:
    async with aiofiles.open(path, "rb") as fh:
        head = await fh.read(12)
    if head[4:8] not in MP4_BRANDS:
        raise DownloadError(f"{provider} · take {take} · {url}: not an MP4 (no ftyp box at the start)")


async def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)
