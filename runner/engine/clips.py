"""The real :class:`~runner.engine.collect.Downloader`: into the run directory, a few at a time.

Injected into the engine like the providers (httpx's lesson: one seam per dependency), so the
engine never touches aiohttp and a test can hand it a downloader that fails the way a full disk
does. What a download raises passes the provider-text guard (:mod:`runner.providers.guard`): its
messages show the result URL and a redirect's ``Location``, which the provider chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp
import anyio

from runner.engine.diskcap import RunDiskCap
from runner.engine.download import DEFAULT_MAX_BYTES, DEFAULT_PACING, Downloaded, Pacing, download
from runner.errors import PrevizError
from runner.providers.guard import ProviderText


class ClipDownloader:
    """Downloads into ``run_dir``, at most ``limit`` at once (a download holds no provider slot)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        run_dir: Path,
        *,
        limit: int = 8,
        max_bytes: int = DEFAULT_MAX_BYTES,
        run_cap: RunDiskCap | None = None,
        pacing: Pacing = DEFAULT_PACING,
        secrets: Sequence[str] = (),
    ) -> None:
        self._session = session
        self._run_dir = run_dir
        self._limit = anyio.CapacityLimiter(limit)
        self._max_bytes = max_bytes
        self._run_cap = run_cap or RunDiskCap(None)
        self._pacing = pacing
        self._text = ProviderText(secrets)

    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        async with self._limit:
            try:
                return await download(
                    self._session,
                    url,
                    self._run_dir / relpath,
                    provider=provider,
                    take=take,
                    max_bytes=self._max_bytes,
                    run_cap=self._run_cap,
                    pacing=self._pacing,
                )
            except PrevizError as exc:
                self._text.error(exc)
                raise
