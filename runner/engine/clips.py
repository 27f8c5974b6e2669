"""The real :class:`~runner.engine.collect.Downloader`: into the run directory, a few at a time.

Injected into the engine like the providers (httpx's lesson: one seam per dependency), so the
engine never touches aiohttp and a test can hand it a downloader that fails the way a full disk
does.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anyio

from runner.engine.download import DEFAULT_MAX_BYTES, Downloaded, download


class ClipDownloader:
    """Downloads into ``run_dir``, at most ``limit`` at once (a download holds no provider slot)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        run_dir: Path,
        *,
        limit: int = 8,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._session = session
        self._run_dir = run_dir
        self._limit = anyio.CapacityLimiter(limit)
        self._max_bytes = max_bytes

    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        async with self._limit:
            return await download(
                self._session,
                url,
                self._run_dir / relpath,
                provider=provider,
                take=take,
                max_bytes=self._max_bytes,
            )
