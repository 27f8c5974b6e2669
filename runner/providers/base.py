"""The one seam between the engine and a provider's wire API (httpx's transport lesson).

An adapter turns a neutral :class:`SubmitRequest` into its provider's request, and its answers
back into neutral :class:`TaskStatus` values. It owns request shapes, status words, error mapping
and cost; the engine owns everything about *when* to call it. Adapters raise only the
:mod:`runner.errors` tree:

* submit: :class:`~runner.errors.NotSentError` (never reached the server: resend is safe),
  :class:`~runner.errors.RateLimitedError` / :class:`~runner.errors.TransientError` (429/5xx: the
  server refused it, resend is safe), :class:`~runner.errors.AmbiguousSubmitError` (sent, no
  answer: only a ``resend_safe`` provider may resend), :class:`~runner.errors.TerminalError`.
* poll: transient errors (retry with backoff) or :class:`~runner.errors.TerminalError` (401...).
  A task the provider says failed is *not* an exception: it is a ``FAILED`` status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from runner.errors import FailureKind
from runner.manifest.takes import Take


class TaskState(StrEnum):
    """Neutral task states (providers.md §4 status mapping). Unknown words map to PENDING."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


@dataclass(frozen=True)
class SubmitRequest:
    """A take ready for the wire: images already encoded (https URL or data: URI)."""

    take: Take
    image: str
    last_image: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class Submitted:
    """The provider's handle for a submitted task (AIML/Runway task id, Runware taskUUID)."""

    handle: str
    already_existed: bool = False  # Runware answered conflictTaskUUID: an earlier send landed


#: ``raw_status`` of a task the provider says it does not know (a 404, Runware's ``taskNotFound``):
#: it never existed, or is gone. The one status word the engine reads.
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class TaskStatus:
    """One poll's answer about one task, in neutral words (what the engine decides on).

    ``raw_status`` is the provider's own word, kept for messages; ``progress`` is 0–1 where the
    provider says (Runway); ``output_url`` only once SUCCEEDED; ``cost_usd`` is the provider's own
    figure, not yet believed (``runner.engine.cost`` decides); ``failure_*`` only when FAILED.
    """

    handle: str
    state: TaskState
    raw_status: str
    progress: float | None = None
    output_url: str | None = None
    cost_usd: float | None = None  # the provider's own figure, when it gives one
    seed: int | None = None
    failure_kind: FailureKind | None = None
    failure_message: str | None = None
    #: A FAILED task the provider did not bill, whose cause is on the provider's side (Runway
    #: ``INTERNAL``, ``THIRD_PARTY.*``): a *new* task for the same take may well succeed.
    retryable: bool = False


@dataclass(frozen=True)
class Account:
    """What a provider says of the account behind a key, from a request that bills nothing.

    Only Runway publishes limits (``GET /v1/organization``); the others fill ``checked_with`` and
    whatever their check answers. ``None`` means "not said", which is not the same as "no limit".
    """

    checked_with: str  # the request that proved the key, e.g. "GET /v1/organization"
    max_concurrent: int | None = None  # tasks the tier runs at once (the rest wait, billed later)
    max_daily: int | None = None  # tasks the tier may create per day
    used_today: int | None = None  # tasks created today, as the provider counts them
    balance_usd: float | None = None  # credit left on the account


class Provider(Protocol):
    """What the engine needs of a provider. One instance per provider per run."""

    name: str
    #: How many tasks one poll request can cover (Runware batches; the others take one).
    max_poll_batch: int
    #: Seconds the provider asks clients to leave between two polls of the same task.
    min_poll_interval: float
    #: True when resending a submit after an ambiguous failure cannot bill twice.
    resend_safe: bool
    #: True when a task in flight can be cancelled at the provider (Runway only).
    can_cancel: bool

    def planned_handle(self, request: SubmitRequest) -> str | None:
        """The handle this request's task will have, when the client picks it (Runware's taskUUID).

        The journal writes it ahead of the POST, so a crash mid-submit can be reconciled.
        """
        ...

    async def submit(self, request: SubmitRequest) -> Submitted: ...

    async def poll(self, handles: Sequence[str]) -> Mapping[str, TaskStatus]:
        """Status of each handle. Handles missing from the answer are simply absent."""
        ...

    async def cancel(self, handle: str) -> bool:
        """Cancel a task in flight; True when the provider confirmed (or already forgot) it.

        Providers that cannot cancel (``can_cancel`` False) return False without a request.
        """
        ...


class Secret:
    """An API key that refuses to be printed: ``repr``/``str`` show ``***``.

    Only :meth:`reveal` gives the value, and only adapters call it, to build a header.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ProviderConfig:
    """Where and how to reach one provider; built once at the edge from the environment."""

    name: str
    base_url: str  # scheme://host[:port], no trailing slash; adapters append their paths
    api_key: Secret
    connect_timeout: float = 10.0
    request_timeout: float = 60.0  # whole request, per attempt
    #: The environment variable the key came from (None: the simulator's key), for messages.
    key_source: str | None = None
    #: The built-in simulator's key, which is no secret (``sim-runway-key``): not redacted, or
    #: every "runway" in run.log would read ``***``.
    public_key: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be shown: the key, unless it is the simulator's."""
        return () if self.public_key else (self.api_key.reveal(),)
