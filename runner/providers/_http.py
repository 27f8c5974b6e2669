"""Wire plumbing shared by the three adapters: one request, one error translation.

Every adapter speaks JSON over HTTPS with a bearer key, and every adapter must turn the same
handful of aiohttp failures into the same :mod:`runner.errors` classes (DESIGN §4). Keeping that
here means the question "could this submit have landed?" is answered in one place:

* the connection was never made (connector error, connect timeout) → :class:`NotSentError`;
* the request left and the answer did not come back whole → :class:`AmbiguousSubmitError` on a
  submit, :class:`TransientError` on a poll;
* the server answered → an :class:`Answer`, whatever its status; the adapter decides, usually via
  :meth:`Wire.error`, which applies the common status table with per-provider overrides;
* the server answered 2xx with a body we will not read (over :data:`MAX_BODY`, or not JSON) →
  :meth:`Wire.malformed`: a failed poll, or an ambiguous submit.

Every body is read with a cap: an endless or huge answer costs at most :data:`MAX_BODY` bytes of
memory, and the connection is dropped rather than drained.

The key is revealed only inside :meth:`Wire._headers` and is scrubbed from every message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from runner.errors import (
    AmbiguousSubmitError,
    FailureKind,
    NotSentError,
    ProviderError,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.netloc import safe_url as safe_url  # re-exported: adapters and tests use it from here
from runner.providers.base import ProviderConfig
from runner.providers.shapes import mentions_moderation, message_of
from runner.redact import Redactor

#: HTTP statuses that end a request for good unless an adapter says otherwise.
DEFAULT_KINDS: Mapping[int, FailureKind] = {
    400: FailureKind.INPUT,
    401: FailureKind.AUTH,
    402: FailureKind.CREDITS,
    403: FailureKind.AUTH,
    422: FailureKind.INPUT,
}
_SNIPPET = 300
#: the most of an API answer ever read; no provider's JSON answer comes near it
MAX_BODY = 1024 * 1024
_READ = 64 * 1024


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


# --- the request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the server said: status, parsed JSON (None when the body is not JSON) and a text snippet.

    ``size`` is how many body bytes were read; ``truncated`` says the body went on past
    :data:`MAX_BODY` and was not read further (``data`` is then None).
    """

    status: int
    raw_url: URL | str = field(repr=False)  # as requested: shown only through ``url``
    data: Any
    text: str
    retry_after: float | None = None
    size: int = 0
    truncated: bool = False

    @property
    def url(self) -> str:
        """The URL fit for a message (:func:`safe_url`), worked out only when an error needs it."""
        return safe_url(self.raw_url)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def unreadable(self) -> str | None:
        """Why the body cannot be used as JSON (None if it can, or if it is empty)."""
        if self.truncated:
            return f"body over {MAX_BODY} bytes, not read past that"
        if self.data is None and self.text.strip():
            return "body is not JSON"
        return None

    @classmethod
    def build(
        cls, status: int, url: URL, headers: Mapping[str, str], body: bytes, *, truncated: bool = False
    ) -> Answer:
        data = None if truncated else _parse_json(body)
        text = body[:_SNIPPET].decode("utf-8", "replace")
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return cls(status, url, data, text, retry_after, len(body), truncated)


def _parse_json(body: bytes) -> Any:
    """The JSON in ``body``, or None (empty, not JSON, or nested deeper than Python can follow)."""
    try:
        return json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return None


async def read_capped(resp: aiohttp.ClientResponse, cap: int = MAX_BODY) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more (which is then left unread)."""
    body = bytearray()
    while len(body) <= cap:
        chunk = await resp.content.read(min(_READ, cap + 1 - len(body)))
        if not chunk:
            return bytes(body), False
        body += chunk
    return bytes(memoryview(body)[:cap]), True


def _shown(url: str, params: Mapping[str, str] | None) -> str:
    """A request's URL for an error message (worked out only when there is an error to tell)."""
    return safe_url(URL(url).with_query(params or {}))


class Wire:
    """One provider's HTTP edge: builds headers per request and translates every failure."""

    def __init__(
        self,
        config: ProviderConfig,
        session: aiohttp.ClientSession,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = config.name
        self._config = config
        self._session = session
        self._extra = dict(headers or {})
        self._redactor = Redactor(config.secrets)
        self._timeout = aiohttp.ClientTimeout(
            total=config.request_timeout, sock_connect=config.connect_timeout
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._config.api_key.reveal()}",
            "Accept": "application/json",
            **self._extra,
        }

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, str] | None = None,
        submit: bool = False,
        take: str | None = None,
    ) -> Answer:
        """Send one request; return the answer whatever its status, or raise a transport error."""
        url = self._config.base_url + path
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                params=params,
                headers=self._headers(),
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                raw, truncated = await read_capped(resp)
                answer = Answer.build(resp.status, resp.url, resp.headers, raw, truncated=truncated)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSentError(
                f"could not connect ({type(exc).__name__})",
                provider=self.provider,
                url=_shown(url, params),
                take=take,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise TerminalError(
                "invalid URL",
                kind=FailureKind.PROVIDER,
                provider=self.provider,
                url=_shown(url, params),
                take=take,
            ) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._lost(exc, _shown(url, params), submit=submit, take=take) from exc
        if answer.ok and answer.unreadable:
            raise self.malformed(answer, answer.unreadable, submit=submit, take=take)
        return answer

    def _lost(self, exc: BaseException, url: str, *, submit: bool, take: str | None) -> ProviderError:
        what = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({type(exc).__name__})"
        if submit:
            return AmbiguousSubmitError(
                f"{what} after the submit was sent: it may have landed",
                provider=self.provider,
                url=url,
                take=take,
            )
        return TransientError(what, provider=self.provider, url=url, take=take)

    def scrub(self, text: str) -> str:
        """``text`` cut to a readable length, with the key and control characters removed (the
        guard, :mod:`runner.providers.guard`, applies the same rule again at the seam)."""
        return self._redactor.clean(text, _SNIPPET)

    def error(
        self,
        answer: Answer,
        *,
        kinds: Mapping[int, FailureKind] | None = None,
        take: str | None = None,
    ) -> ProviderError:
        """The exception for a non-2xx answer: 429 rate, 408/5xx transient, the rest terminal."""
        detail = self.scrub(message_of(answer.data, answer.text))
        where: dict[str, Any] = {"provider": self.provider, "status": answer.status, "url": answer.url}
        if take:
            where["take"] = take
        if answer.status == 429:
            return RateLimitedError(detail, retry_after=answer.retry_after, **where)
        if answer.status == 408 or answer.status >= 500:
            return TransientError(detail, **where)
        kind = {**DEFAULT_KINDS, **(kinds or {})}.get(answer.status, FailureKind.PROVIDER)
        if kind is FailureKind.INPUT and mentions_moderation(detail):
            kind = FailureKind.MODERATION
        if 300 <= answer.status < 400:
            detail = f"unexpected redirect: {detail}"
        return TerminalError(detail, kind=kind, **where)

    def malformed(self, answer: Answer, why: str, *, submit: bool, take: str | None = None) -> ProviderError:
        """A 2xx whose body we cannot read: a submit may have landed; a poll can simply be asked again."""
        detail = self.scrub(f"unreadable answer ({why}): {answer.text.strip() or '(empty body)'}")
        cls = AmbiguousSubmitError if submit else TransientError
        return cls(detail, provider=self.provider, status=answer.status, url=answer.url, take=take)
