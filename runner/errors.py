"""One exception tree for previz-runner.

Every error the runner raises on purpose is a :class:`PrevizError`; the CLI is the only place
that turns one into a message and an exit code. Dependency errors (aiohttp, yaml, sqlite) are
translated at the edge with ``raise Ours(...) from exc`` so nothing above the adapters needs to
know which library spoke.

::

    PrevizError
    ├── InputError                  exit 2: bad manifest, argument, key or image; nothing submitted
    │   ├── ManifestError           carries every Problem of a file at once (file:line:col field: msg)
    │   └── ConfigError             missing key, refused base URL, bad CLI option
    ├── LockHeldError               exit 4: a run of the same manifest is already going
    ├── ProviderError               a provider answered (or failed to) in a way we must act on
    │   ├── TransientError          429/5xx/connection trouble; safe to retry the *same* request
    │   │   ├── RateLimitedError    429, with an optional Retry-After
    │   │   └── NotSentError        the request provably never reached the server (connect failed)
    │   ├── AmbiguousSubmitError    a submit may or may not have landed (timeout after sending)
    │   ├── TerminalError           will not get better by retrying; carries a FailureKind
    │   │   └── PollGaveUpError     polls of an accepted task kept failing: its fate is unknown
    │   └── ExpiredURLError         a result URL answered 403/404/410: poll again for a fresh one
    └── DownloadError               a clip arrived broken (short, not a whole MP4); retry the download
        └── UnfetchableError        retrying cannot help: a scheme that never works (file:, ftp:,
                                    javascript:), http to a remote host, a redirect off https or
                                    past the limit, a clip over the size cap (``retryable`` False)

Messages name the provider, the take, the HTTP status and the URL — never a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    """Why a take ended as failed; written to the ledger's ``failure_kind`` column."""

    INPUT = "input"
    MODERATION = "moderation"
    PROVIDER = "provider"
    TIMEOUT = "timeout"
    AUTH = "auth"
    CREDITS = "credits"
    BUDGET = "budget"
    DOWNLOAD = "download"
    UNCERTAIN = "uncertain"  # a submit may have landed; not resent so as not to pay twice


class PrevizError(Exception):
    """Base of every error previz-runner raises on purpose."""


class InputError(PrevizError):
    """Bad input from the user: exit 2, nothing submitted."""


@dataclass(frozen=True)
class Problem:
    """One finding in a manifest, located at the YAML node it came from."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(InputError):
    """Every problem found in a manifest, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(InputError):
    """A missing API key, a refused base URL, a bad option."""


class LockHeldError(PrevizError):
    """Another run of the same manifest holds the lock: exit 4."""


class ProviderError(PrevizError):
    """A provider call that did not give us what we asked for."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        url: str | None = None,
        take: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.url = url
        self.take = take
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.provider]
        if self.take:
            parts.append(f"take {self.take}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.url:
            parts.append(self.url)
        return f"{' · '.join(parts)}: {self.detail}"

    def scrub(self, clean: Callable[[str], str]) -> None:
        """Pass the text a provider chose (the detail, the URL) through ``clean``, in place."""
        self.detail = clean(self.detail)
        self.url = clean(self.url) if self.url else self.url
        self.args = (self._render(),)


class TransientError(ProviderError):
    """Worth retrying the same request after a backoff."""


class RateLimitedError(TransientError):
    """429: the provider wants us to slow down (and maybe run fewer tasks at once)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class NotSentError(TransientError):
    """The connection failed before the request could reach the server: resending cannot bill twice."""


class AmbiguousSubmitError(ProviderError):
    """A submit was sent but no answer came back: it may have landed (and be billed)."""


class TerminalError(ProviderError):
    """Retrying the same request will not help; ``kind`` says why."""

    def __init__(self, message: str, *, kind: FailureKind, **kw: object) -> None:
        self.kind = kind
        super().__init__(message, **kw)  # type: ignore[arg-type]


class PollGaveUpError(TerminalError):
    """The polls of a task the provider accepted kept failing (or were put off past what the take
    may wait): the task may still run and bill, so the take keeps its cost and its task id."""


class ExpiredURLError(ProviderError):
    """A result URL is no longer valid (403/404/410): ask the provider again for a fresh one."""


class DownloadError(PrevizError):
    """A clip arrived broken: short, or not a whole MP4. Fetching it again may help."""

    #: whether fetching the same URL again can help; the engine retries only when True
    retryable: bool = True


class UnfetchableError(DownloadError):
    """The result URL can never give a clip we accept; fail the take now instead of retrying."""

    retryable = False
