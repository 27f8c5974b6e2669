"""Provider text enters the program here, and only here: cleaned before anything records or prints it.

A provider chooses strings that end up in the journal, the ledgers, the report, ``retry.yaml`` and
on the terminal: task ids, status words, failure messages, URLs (in error messages), a redirect's
``Location``. A hostile or broken one may put our key in them (whole, in part, URL- or
base64-encoded) or terminal escapes (``\\x1b[2J`` clears the screen). Two seams carry all of it:

* :class:`GuardedProvider` wraps every adapter (:func:`~runner.providers.registry.build_provider`):
  every :class:`TaskStatus`, :class:`Submitted` and :class:`ProviderError` crosses it;
* :class:`ProviderText.error` is applied by the clip downloader (:mod:`runner.clips`) to what a
  download raises (result URLs and ``Location`` headers are shown in those messages).

The rule is :func:`runner.redact.clean`: control characters out, every run of 6 or more characters
of the key (any case, URL-encoded, base64) replaced by ``***``, cut to a message's length.

A task id is different: it must be stored verbatim, or the next run cannot poll the task that
bills. So an id that is not plain printable text, is absurdly long, or holds a run of
:data:`HANDLE_RUN` characters of the key is refused as an unreadable answer (the submit may have
landed: ``uncertain``, charged). The longer run is deliberate: real ids are random hex, and a
6-character coincidence between one and a long hex key (Runway's) comes about once in 14,000
tasks — refusing on that would write off honest, billed tasks; a 10-character one never does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from runner.errors import AmbiguousSubmitError, PrevizError, ProviderError
from runner.providers.base import Provider, SubmitRequest, Submitted, TaskStatus
from runner.redact import Redactor, forms
from runner.textcheck import strip_controls

E = TypeVar("E", bound=PrevizError)

#: the most of a provider's message kept (the journal and the ledgers hold it per take)
MESSAGE_LIMIT = 500
#: a provider's status word is one word
STATUS_LIMIT = 64
#: the longest task id accepted (real ones are UUIDs, 36 characters)
HANDLE_LIMIT = 256
#: a task id holding this many consecutive characters of the key is an echo, not a coincidence
HANDLE_RUN = 10


class ProviderText:
    """The cleaning rule bound to the keys a provider (or a downloader) may see echoed."""

    def __init__(self, secrets: Iterable[str]) -> None:
        keys = tuple(secrets)
        self._redactor = Redactor(keys)
        self._echoes = frozenset(
            form[i : i + HANDLE_RUN]
            for key in keys
            for form in {f.lower() for f in forms(key)}
            for i in range(len(form) - HANDLE_RUN + 1)
        )

    def text(self, text: str, limit: int = MESSAGE_LIMIT) -> str:
        return self._redactor.clean(text, limit)

    def optional(self, text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
        return None if text is None else self.text(text, limit)

    def handle_problem(self, handle: str) -> str | None:
        """Why ``handle`` may not be stored or shown as it is (None: it may)."""
        if strip_controls(handle) != handle:
            return "holds control characters"
        if len(handle) > HANDLE_LIMIT:
            return f"is over {HANDLE_LIMIT} characters"
        folded = handle.lower()
        if any(folded[i : i + HANDLE_RUN] in self._echoes for i in range(len(folded) - HANDLE_RUN + 1)):
            return "holds the API key"
        return None

    def status(self, status: TaskStatus) -> TaskStatus:
        """``status`` with its provider-chosen words cleaned (the URL is kept: it is fetched)."""
        return replace(
            status,
            raw_status=self.text(status.raw_status, STATUS_LIMIT),
            failure_message=self.optional(status.failure_message),
        )

    def error(self, exc: E) -> E:
        """``exc`` with the text it carries cleaned, in place (its class and fields kept)."""
        if isinstance(exc, ProviderError):
            exc.scrub(self.text)
        else:
            exc.args = tuple(self.text(a) if isinstance(a, str) else a for a in exc.args)
        return exc


class GuardedProvider:
    """A :class:`Provider` whose every answer and error has passed :class:`ProviderText`."""

    def __init__(self, inner: Provider, text: ProviderText) -> None:
        self.adapter = inner  # what it wraps, for a test to see
        self._inner = inner
        self._text = text
        self.name = inner.name
        self.max_poll_batch = inner.max_poll_batch
        self.min_poll_interval = inner.min_poll_interval
        self.resend_safe = inner.resend_safe
        self.can_cancel = inner.can_cancel

    def planned_handle(self, request: SubmitRequest) -> str | None:
        return self._inner.planned_handle(request)

    async def submit(self, request: SubmitRequest) -> Submitted:
        try:
            submitted = await self._inner.submit(request)
        except ProviderError as exc:
            self._text.error(exc)
            raise
        problem = self._text.handle_problem(submitted.handle)
        if problem is not None:
            shown = self._text.text(submitted.handle, 80)
            raise AmbiguousSubmitError(
                f"the answer's task id {shown!r} {problem}: it cannot be kept or polled safely",
                provider=self.name,
                take=request.take.label,
            )
        return submitted

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        try:
            found = await self._inner.poll(handles)
        except ProviderError as exc:
            self._text.error(exc)
            raise
        return {handle: self._text.status(status) for handle, status in found.items()}

    async def cancel(self, handle: str) -> bool:
        try:
            return await self._inner.cancel(handle)
        except ProviderError as exc:
            self._text.error(exc)
            raise
