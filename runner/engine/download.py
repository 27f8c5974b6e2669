"""Streamed, verified downloads: a clip is done only when a whole, real MP4 is on disk.

The body is streamed to ``<name>.part`` while its sha256 is computed: the event loop reads the
socket and a writer thread hashes and writes what it read (:mod:`runner.engine.piecewriter`), so the two
overlap and the loop never blocks on the disk; a bounded queue between them keeps memory flat
whatever the clip size. Then the size is checked against Content-Length and the box structure is
walked (:mod:`runner.engine.mp4`); the file is fsynced once, then renamed into place.
A short body is resumed with a Range request where the server offers one, else fetched again.

Why every limit here: a result URL comes from a provider or its CDN, and either may be broken or
hostile. So only ``https`` is fetched (plain ``http`` to loopback only), redirects are followed
by hand (at most :data:`MAX_REDIRECTS`, each hop checked the same way), the body is cut off at
``max_bytes``, a read that brings no byte for ``read_timeout`` seconds and a download that takes
longer than ``total_timeout`` fail. What cannot get better by retrying raises
:class:`~runner.errors.UnfetchableError` (``retryable`` False); a URL that answers 403/404/410
has expired: :class:`~runner.errors.ExpiredURLError` tells the caller to ask the provider for a
fresh one; the rest is :class:`~runner.errors.TransientError` or
:class:`~runner.errors.DownloadError`, worth another try.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from io import BufferedRandom, BufferedWriter
from pathlib import Path

import aiofiles.os
import aiohttp
import anyio
import anyio.to_thread
from yarl import URL

from runner.engine.diskcap import RunDiskCap
from runner.engine.mp4 import Mp4Error, Mp4Info, inspect
from runner.engine.piecewriter import PieceWriter
from runner.errors import DownloadError, ExpiredURLError, NotSentError, TransientError, UnfetchableError
from runner.netloc import fetch_problem, safe_url

#: Pieces read from the socket (at most; aiohttp hands over what has arrived) and queued for the
#: writer thread, at most DEPTH waiting while it writes the DEPTH before them: memory stays under
#: about PIECE × (2 × DEPTH + 2), 6 MB, whatever the clip's size. 1 MB pieces two deep beat 512 kB
#: four deep (fewer GIL hand-offs for the writer): 200 MB in 0.41 s against 0.52 s, medians of 6
#: alternated runs, curl+fsync 0.35-0.45 s (perf.py --only download).
PIECE = 1024 * 1024
DEPTH = 2
EXPIRED = frozenset({403, 404, 410})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: defaults for download()'s limits; the CLI may lower or raise the size cap (--max-clip-mb)
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 900.0


@dataclass(frozen=True)
class Pacing:
    """The slowest a body may come: under ``min_bps`` over any ``window_s`` it is cut (and tried
    again). A slowloris — 1 byte every 5 s under an honest Content-Length — never trips the read
    timeout, and held a download slot for about 30 minutes; now for about ``window_s``."""

    min_bps: float = 10_000.0
    window_s: float = 60.0


DEFAULT_PACING = Pacing()


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str
    clip_duration_s: float | None  # from the clip's mvhd; None when the file says "unknown"
    width: int | None  # from the first video track's tkhd; None without a video track
    height: int | None


class _Where:
    """Who is downloading what, for messages: the URL is shown redacted (worked out only when a
    message needs it — most downloads never fail)."""

    def __init__(self, provider: str, take: str, raw_url: str) -> None:
        self.provider = provider
        self.take = take
        self._raw_url = raw_url

    @functools.cached_property
    def url(self) -> str:
        return safe_url(self._raw_url)

    def __str__(self) -> str:
        return f"{self.provider} · take {self.take} · {self.url}"

    def transient(self, message: str, status: int | None = None) -> TransientError:
        return TransientError(message, provider=self.provider, take=self.take, url=self.url, status=status)


class _Part:
    """The growing ``.part`` file, the hash of what it holds so far, and the caps it must stay
    under: its own (``max_bytes``) and the run's (every byte it holds is taken from ``run_cap``)."""

    def __init__(self, dest: Path, max_bytes: int, run_cap: RunDiskCap) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.max_bytes = max_bytes
        self.run_cap = run_cap
        self.hasher = hashlib.sha256()
        self.size = 0
        self.total: int | None = None

    def grow(self, size: int) -> None:
        self.run_cap.take(size)
        self.size += size

    def restart(self) -> None:
        self.run_cap.give_back(self.size)  # the file starts again from nothing
        self.hasher = hashlib.sha256()
        self.size = 0
        self.total = None


class _Pace:
    """How fast the body of one request comes, window by window (see :class:`Pacing`)."""

    def __init__(self, pacing: Pacing) -> None:
        self._pacing = pacing
        self._start = anyio.current_time()
        self._got = 0

    def check(self, size: int, where: _Where) -> None:
        self._got += size
        now = anyio.current_time()
        took = now - self._start
        if took < self._pacing.window_s:
            return
        if self._got < self._pacing.min_bps * took:
            raise where.transient(
                f"download too slow: {self._got} bytes in {took:.0f} s "
                f"(under {self._pacing.min_bps / 1000:g} kB/s)"
            )
        self._start, self._got = now, 0


async def download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    provider: str,
    take: str,
    max_resumes: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
    run_cap: RunDiskCap | None = None,
    pacing: Pacing = DEFAULT_PACING,
) -> Downloaded:
    """Fetch ``url`` to ``dest``; raise UnfetchableError, ExpiredURLError, TransientError or DownloadError.

    Nothing is left behind on failure: the ``.part`` file is removed, ``dest`` is never created.
    """
    where = _Where(provider, take, url)
    problem = fetch_problem(url)
    if problem:
        raise UnfetchableError(f"{where}: {problem}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part(dest, max_bytes, run_cap or RunDiskCap(None))
    try:
        try:
            with anyio.fail_after(total_timeout):
                await _fetch_all(session, url, part, where, _Limits(read_timeout, pacing), max_resumes)
        except TimeoutError as exc:
            raise where.transient(f"download not finished after {total_timeout:g} s") from exc
        return await _finish(part, dest, where)
    except BaseException:
        with anyio.CancelScope(shield=True):  # also on a hard stop: leave no half-written clip behind
            await _remove(part.path)
        part.run_cap.give_back(part.size)
        raise


@dataclass(frozen=True)
class _Limits:
    read_timeout: float
    pacing: Pacing


async def _fetch_all(
    session: aiohttp.ClientSession, url: str, part: _Part, where: _Where, limits: _Limits, resumes: int
) -> None:
    for _ in range(resumes + 1):
        await _fetch(session, url, part, where, limits)
        if part.total is None or part.size >= part.total:
            return


async def _fetch(
    session: aiohttp.ClientSession, url: str, part: _Part, where: _Where, limits: _Limits
) -> None:
    read_timeout = limits.read_timeout
    if part.size and await _stored_size(part.path) != part.size:
        part.restart()  # the file does not hold what was counted: only a whole download will do
    headers = {"Range": f"bytes={part.size}-"} if part.size else {}
    timeouts = aiohttp.ClientTimeout(total=None, sock_connect=read_timeout, sock_read=read_timeout)
    try:
        async with _get(session, url, headers, timeouts, where) as resp:
            _check_status(resp, where)
            if part.size and resp.status != 206:
                part.restart()  # no Range support: start over
            if part.total is None:
                part.total = _total_length(resp, part.size)
                _check_cap(part.total, part, where)
            await _stream(resp, part, where, _Pace(limits.pacing))
    except aiohttp.ClientConnectorError as exc:
        raise NotSentError(
            f"cannot connect: {exc}", provider=where.provider, take=where.take, url=where.url
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        if part.total is None:  # no length to resume against: only a fresh, whole download will do
            raise where.transient("download cut short") from exc
        return  # body cut short: the caller resumes with Range
    except aiohttp.ServerTimeoutError as exc:
        raise where.transient(f"no data for {read_timeout:g} s") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise where.transient(f"download interrupted: {type(exc).__name__}") from exc


@contextlib.asynccontextmanager
async def _get(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    limits: aiohttp.ClientTimeout,
    where: _Where,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The response at the end of at most MAX_REDIRECTS redirects, each hop to a fetchable URL."""
    for _ in range(MAX_REDIRECTS + 1):
        async with session.get(url, headers=headers, timeout=limits, allow_redirects=False) as resp:
            if resp.status not in REDIRECTS:
                yield resp
                return
            url = _next_hop(resp, where)
    raise UnfetchableError(f"{where}: more than {MAX_REDIRECTS} redirects")


def _next_hop(resp: aiohttp.ClientResponse, where: _Where) -> str:
    location = resp.headers.get("Location", "")
    try:
        target = str(resp.url.join(URL(location))) if location else ""
    except ValueError:
        target = ""
    problem = "no usable Location" if not target else fetch_problem(target)
    if problem:
        shown = safe_url(target or location)
        raise UnfetchableError(f"{where}: HTTP {resp.status} redirect to {shown}: {problem}")
    return target


def _check_status(resp: aiohttp.ClientResponse, where: _Where) -> None:
    if resp.status in EXPIRED:
        raise ExpiredURLError(
            "result URL expired", provider=where.provider, status=resp.status, take=where.take, url=where.url
        )
    if resp.status >= 400:
        raise where.transient("download failed", status=resp.status)


def _check_cap(size: int | None, part: _Part, where: _Where) -> None:
    if size is not None and size > part.max_bytes:
        raise UnfetchableError(
            f"{where}: the clip is over the size cap of {part.max_bytes} bytes ({size} bytes or more)"
        )


def _total_length(resp: aiohttp.ClientResponse, already: int) -> int | None:
    if resp.status == 206:
        content_range = resp.headers.get("Content-Range", "")
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return resp.content_length


async def _stream(resp: aiohttp.ClientResponse, part: _Part, where: _Where, pace: _Pace) -> None:
    """Stream the body to the ``.part`` file. A body cut short still has every piece read so far
    written before the cut is raised: ``part.size`` counts them, and the resume asks for the bytes
    from there (dropping the queued ones left a hole the size of the queue in the file)."""
    writer = PieceWriter(partial(_open, part.path, part.size), part.hasher, depth=DEPTH)
    try:
        try:
            async for piece in resp.content.iter_chunked(PIECE):
                _check_cap(part.size + len(piece), part, where)  # stop reading before writing past the cap
                part.grow(len(piece))  # RunDiskCapReached past the run's cap
                await writer.put(piece)
                pace.check(len(piece), where)
        except aiohttp.ClientPayloadError:
            await writer.finish()
            raise
        await writer.finish()
    finally:  # the thread ends (and closes the file) even when a timeout or a hard stop cancels
        with anyio.CancelScope(shield=True):
            await writer.abort()


def _open(path: Path, offset: int) -> BufferedWriter | BufferedRandom:
    """The ``.part`` file, positioned at ``offset``: a resume writes right after what is there."""
    if not offset:
        return path.open("wb")
    fh = path.open("r+b")
    fh.truncate(offset)
    fh.seek(offset)
    return fh


async def _finish(part: _Part, dest: Path, where: _Where) -> Downloaded:
    if part.total is not None and part.size != part.total:
        raise DownloadError(f"{where}: got {part.size} of {part.total} bytes after resuming")
    try:
        info = await anyio.to_thread.run_sync(_inspect_and_place, part.path, dest)
    except Mp4Error as exc:
        raise DownloadError(f"{where}: {exc} ({part.size} bytes)") from exc
    return Downloaded(
        path=dest,
        bytes=part.size,
        sha256=part.hasher.hexdigest(),
        clip_duration_s=info.duration_s,
        width=info.width,
        height=info.height,
    )


def _inspect_and_place(part: Path, dest: Path) -> Mp4Info:
    """A whole MP4 is renamed into place; anything else raises Mp4Error and stays a ``.part``."""
    info = inspect(part)
    os.replace(part, dest)
    return info


async def _stored_size(path: Path) -> int | None:
    try:
        return (await anyio.Path(path).stat()).st_size
    except FileNotFoundError:
        return None


async def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)
