"""Sending a take's task to its provider, so that nothing is paid twice.

Every send is preceded by its write-ahead row (``submitting``, with the task id the provider will
use where it lets us choose one), and the answer's task id is committed the moment it arrives,
shielded from cancellation: a crash anywhere leaves the journal able to say whether a task may
exist. A failed send is retried under the submit :class:`~runner.engine.retrying.RetryPolicy` — but a
send that may have landed (no answer) is resent only where the provider dedupes resends
(Runware's taskUUID); elsewhere the take is written off as ``uncertain`` rather than risk a second
bill. Where resends ran out and one of them may have landed, the provider is asked about that
taskUUID before anything else: a task it has is rejoined (polled), one it provably does not have
fails the attempt unbilled, and if that cannot be known the take is ``uncertain``, charged its
estimate and kept ``submitting`` so the next run resends the *same* taskUUID. A send that
provably created nothing (refused, or never sent) is recorded so before its retry wait: only a
send whose answer was truly lost is ever ``uncertain``. A provider no connection reaches for
``unreachable_after`` seconds is closed, and a task id the provider hands to a second take fails
that take (polling it would report the other's clip).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from runner.clock import Clock
from runner.engine.cost import Cost, uncertain_cost
from runner.engine.events import Bus, Event, EventKind
from runner.engine.flight import Job, NotStarted, TakeFailed
from runner.engine.lanes import Lane
from runner.engine.retrying import Retries, Retry, RetryPolicy, Step
from runner.errors import (
    AmbiguousSubmitError,
    FailureKind,
    NotSentError,
    ProviderError,
    RateLimitedError,
    TerminalError,
    TransientError,
)
from runner.manifest.takes import ImageRef, Take
from runner.providers.base import NOT_FOUND, SubmitRequest, Submitted
from runner.store.group import AsyncJournal

#: A submit is sent up to 8 times (only where resending is safe), and not after 10 minutes.
SUBMIT_RETRY = RetryPolicy(attempts=8, total=600.0)
#: Failures that close a provider's lane: no other take can succeed with that key or account.
STOPPING_KINDS = frozenset({FailureKind.AUTH, FailureKind.CREDITS})


#: Reserves a new attempt's budget together with the given write-ahead row (see Engine._reserve).
Reserve = Callable[[Mapping[str, Any]], Awaitable[None]]


class Encoder(Protocol):
    def encode(self, ref: ImageRef) -> str: ...


def terminal_failure(lane: Lane, exc: TerminalError, *, paid: Cost | None = None) -> TakeFailed:
    """A refusal that retrying cannot change; a bad key or empty account also closes the lane."""
    if exc.kind in STOPPING_KINDS:
        lane.close(f"{exc.kind.value}: {exc}")
    return TakeFailed(exc.kind, str(exc), cost=paid, paid=paid is not None)


def _created_nothing(error: ProviderError) -> bool:
    """The send never left (no connection) or was answered with a refusal (429, 408, 5xx): no task.

    Such a take goes back to ``reserved`` before the retry wait, so a kill during the wait leaves
    a take the next run simply submits — not a write-ahead ``submitting`` row, which a rerun must
    treat as a submit that may have landed and write off as ``uncertain`` (charging its estimate).
    """
    return isinstance(error, NotSentError) or (isinstance(error, TransientError) and error.status is not None)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Sender:
    """Submits takes (see the module doc). One per run: it remembers which take has which task id."""

    def __init__(
        self,
        policy: RetryPolicy,
        unreachable_after: float,
        *,
        encoder: Encoder,
        journal: AsyncJournal,
        bus: Bus,
        clock: Clock,
        rng: random.Random,
        on_retry: Callable[[Take, Retry], None],
        interrupted: Callable[[], bool],
    ) -> None:
        self._policy = policy
        self._unreachable_after = unreachable_after
        self._encoder = encoder
        self._journal = journal
        self._bus = bus
        self._clock = clock
        self._rng = rng
        self._on_retry = on_retry
        self._interrupted = interrupted
        self._handles: dict[tuple[str, str], str] = {}  # (provider, task id) → the take that has it
        self._unreachable_since: dict[str, float] = {}

    async def submit(self, lane: Lane, job: Job, reserve: Reserve | None = None) -> None:
        """Send the take's task; on return its task id is in the journal and on ``job``.

        ``reserve``, for a new attempt, writes the first write-ahead row together with the
        attempt's budget reservation (it raises NotStarted when the budget or deadline refuses).

        Raises TakeFailed (a refusal, a submit that may have landed where resending is unsafe,
        retries spent) or NotStarted (the lane closed or the user interrupted before a send).
        """
        request = self._request(job)
        self._bus.emit(Event(EventKind.SUBMITTING, job.take, message=f"attempt {job.attempt}"))
        retries = Retries(self._policy, self._clock, self._rng, Step.SUBMIT, lane.name)
        error: ProviderError | None = None
        landed = False  # some send may have landed unseen (resend-safe providers only get here)
        while True:
            await lane.rate.wait()
            self._check_may_send(lane, error)
            await self._write_ahead(lane, job, request, reserve)
            reserve = None
            try:
                submitted = await lane.provider.submit(request)
            except TerminalError as exc:
                error = exc
                raise terminal_failure(lane, exc) from exc
            except AmbiguousSubmitError as exc:
                if not lane.provider.resend_safe:
                    raise self._uncertain(job, exc) from exc
                error, landed = exc, True
            except RateLimitedError as exc:
                await lane.slots.shrink()
                error = exc
            except TransientError as exc:
                error = exc
            else:
                error = None
                await self._submitted(job, submitted)
                return
            finally:
                self._note_reachability(lane, error)
            if not landed and _created_nothing(error):
                await self._journal.update(job.take.key, state="reserved", handle=None)
            if not await self._wait_to_resend(lane, job, retries, error, landed):
                return

    async def _wait_to_resend(
        self, lane: Lane, job: Job, retries: Retries, error: ProviderError, landed: bool
    ) -> bool:
        """Wait for the next send: True. False when there is none because the task was found."""
        retry = retries.after(error)
        if retry is None:
            why = f"{retries.spent()}: {error}"
            if not landed:
                raise TakeFailed(FailureKind.PROVIDER, why)
            await self._look_up(lane, job, why)
            return False
        self._on_retry(job.take, retry)
        await self._clock.sleep(retry.delay)
        return True

    async def _look_up(self, lane: Lane, job: Job, why: str) -> None:
        """Resends ran out and one may have landed: ask the provider about that task id (Runware's
        getResponse) and rejoin the task if it has it; raise TakeFailed if not, or if unknown."""
        assert job.handle is not None
        await lane.rate.wait()
        try:
            found = (await lane.provider.poll([job.handle])).get(job.handle)
        except ProviderError as exc:
            found, why = None, f"{why}; asking for task {job.handle} failed too ({exc})"
        if found is not None and found.raw_status == NOT_FOUND:
            raise TakeFailed(FailureKind.PROVIDER, f"{why}; the provider has no task {job.handle}")
        if found is None:
            message = f"{why}; it may have landed: the next run resends the same task id, not a new one"
            cost = uncertain_cost(job.estimate)
            raise TakeFailed(
                FailureKind.UNCERTAIN, message, cost=cost, flags=("uncertain",), resume_state="submitting"
            )
        message = f"its submit landed unseen (task {job.handle}); polling it"
        self._bus.emit(Event(EventKind.WARNING, job.take, message=message))
        await self._submitted(job, Submitted(handle=job.handle))

    def _note_reachability(self, lane: Lane, error: ProviderError | None) -> None:
        """A provider no connection reaches for ``unreachable_after`` seconds is given up."""
        if not isinstance(error, NotSentError):
            self._unreachable_since.pop(lane.name, None)
            return
        since = self._unreachable_since.setdefault(lane.name, self._clock.now())
        if self._clock.now() - since >= self._unreachable_after:
            lane.close(f"provider unreachable: no connection for {self._unreachable_after:.0f} s ({error})")

    def _request(self, job: Job) -> SubmitRequest:
        take = job.take
        image = self._encoder.encode(take.image)
        last = self._encoder.encode(take.last_image) if take.last_image else None
        return SubmitRequest(take, image=image, last_image=last, attempt=job.attempt)

    def _check_may_send(self, lane: Lane, previous: ProviderError | None) -> None:
        """A bad key or Ctrl-C stops submits still waiting, unless an earlier send may have landed."""
        if isinstance(previous, AmbiguousSubmitError):
            return  # a resend-safe provider: resending is how we learn whether it landed
        why = lane.closed_reason or ("interrupted" if self._interrupted() else None)
        if why:
            raise NotStarted(why)

    async def _write_ahead(
        self, lane: Lane, job: Job, request: SubmitRequest, reserve: Reserve | None
    ) -> None:
        """``submitting`` is on disk before the POST: a crash after it is reconciled on rerun."""
        job.submits += 1
        job.handle = lane.provider.planned_handle(request)
        row = {"state": "submitting", "handle": job.handle, "submits": job.submits}
        if reserve is not None:
            await reserve(row)
        else:
            await self._journal.update(job.take.key, **row)

    async def _submitted(self, job: Job, submitted: Submitted) -> None:
        owner = self._handles.setdefault((job.take.provider, submitted.handle), job.take.label)
        if owner != job.take.label:  # polling it would report the other take's clip as this one's
            message = f"the provider answered with task id {submitted.handle}, which {owner} already has"
            raise TakeFailed(FailureKind.PROVIDER, message, cost=uncertain_cost(job.estimate))
        job.handle = submitted.handle
        job.submitted_at = datetime.now(UTC)
        job.submitted_clock = self._clock.now()
        with anyio.CancelScope(shield=True):  # the answer arrived: its task id must reach the disk
            await self._journal.update(
                job.take.key, state="submitted", handle=submitted.handle, submitted_at=iso(job.submitted_at)
            )
        if submitted.already_existed:
            job.flags.append("resumed")
            self._bus.emit(
                Event(EventKind.WARNING, job.take, message="already submitted earlier; polling it")
            )
        self._bus.emit(Event(EventKind.SUBMITTED, job.take, handle=submitted.handle))

    @staticmethod
    def _uncertain(job: Job, exc: AmbiguousSubmitError) -> TakeFailed:
        message = f"submit may have landed but no answer came ({exc}); not resent, to avoid paying twice"
        return TakeFailed(
            FailureKind.UNCERTAIN, message, cost=uncertain_cost(job.estimate), flags=("uncertain",)
        )
