"""The last leg of a take's life: its paid clip onto the disk.

A task that succeeded was billed, so from here on nothing is resubmitted: the clip is downloaded
(through the injected :class:`Downloader`, the engine's one seam to the network for clips),
retried under the download :class:`~runner.engine.retrying.RetryPolicy` when it arrives broken, and an
expired result URL is refreshed by asking the provider again (at most ``url_refreshes`` times,
counted apart from the download retries). What cannot be saved raises :class:`NotSaved` — the
engine records it as "paid but not saved" and the next run fetches it by task id — and an
:class:`OSError` (the clip cannot be written here) is passed through for the engine to judge.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from runner.clock import Clock
from runner.engine.download import Downloaded
from runner.engine.retrying import Retries, Retry, RetryPolicy, Step
from runner.errors import DownloadError, ExpiredURLError, TransientError
from runner.manifest.takes import Take

#: A broken clip is fetched again up to 6 times, and not after 30 minutes of trying.
DOWNLOAD_RETRY = RetryPolicy(attempts=6, total=1800.0)


class Downloader(Protocol):
    async def fetch(self, url: str, relpath: str, *, provider: str, take: str) -> Downloaded:
        """Fetch ``url`` to ``relpath`` under the run directory, verified.

        Raises ExpiredURLError (ask the provider for a fresh URL), TransientError or DownloadError
        (retry), or OSError (the clip cannot be written here: disk full, permissions, a bad path).
        """
        ...


class NotSaved(Exception):
    """The clip could not be fetched; the task stays paid and the next run tries again."""


@dataclass(frozen=True)
class CollectOptions:
    retry: RetryPolicy = DOWNLOAD_RETRY
    url_refreshes: int = 3  # times an expired result URL is refreshed by polling the task again


class Collector:
    """Downloads a take's clip under the retry policy, refreshing expired URLs (see the module doc).

    ``on_retry`` hears of every retry before its wait; ``on_start`` of every download attempt.
    """

    def __init__(
        self,
        downloader: Downloader,
        options: CollectOptions,
        clock: Clock,
        rng: random.Random,
        *,
        on_retry: Callable[[Take, Retry], None],
        on_start: Callable[[Take], None],
    ) -> None:
        self._downloader = downloader
        self._opt = options
        self._clock = clock
        self._rng = rng
        self._on_retry = on_retry
        self._on_start = on_start

    async def collect(
        self, take: Take, relpath: str, url: str | None, refresh: Callable[[], Awaitable[str | None]]
    ) -> Downloaded:
        """``url``'s clip at ``relpath``; ``refresh`` asks the provider for a fresh URL."""
        retries = Retries(self._opt.retry, self._clock, self._rng, Step.DOWNLOAD, take.provider)
        refreshes = 0
        while True:
            if url is None:
                raise NotSaved("the task succeeded without an output URL")
            try:
                return await self._fetch(take, relpath, url)
            except ExpiredURLError as exc:
                refreshes += 1
                if refreshes > self._opt.url_refreshes:
                    raise NotSaved(f"URL still expired after {refreshes - 1} refreshes: {exc}") from exc
                url = await refresh()
            except (TransientError, DownloadError) as exc:
                await self._wait_to_retry(take, retries, exc)

    async def _fetch(self, take: Take, relpath: str, url: str) -> Downloaded:
        self._on_start(take)
        return await self._downloader.fetch(url, relpath, provider=take.provider, take=take.label)

    async def _wait_to_retry(self, take: Take, retries: Retries, exc: TransientError | DownloadError) -> None:
        if isinstance(exc, DownloadError) and not exc.retryable:
            raise NotSaved(str(exc)) from exc
        retry = retries.after(exc)
        if retry is None:
            raise NotSaved(f"{retries.spent()}: {exc}") from exc
        self._on_retry(take, retry)
        await self._clock.sleep(retry.delay)
