"""The run: a take's life — submit, wait for a terminal status, download, record.

One task group holds a poller per provider lane and a feeder per lane; a feeder starts a take
only when a slot is free, so a manifest of 10,000 takes never has more coroutines than slots plus
downloads. A take's life (:meth:`Engine._run_take`) reads top to bottom: the budget reserved
(:mod:`runner.engine.gate`, in the journal), the task sent (:mod:`runner.engine.sending`), its
terminal status awaited from the lane's poller (:mod:`runner.engine.polling`), the clip fetched
(:mod:`runner.engine.collect`), and the end recorded — journal state, ledger row and freed
reservation in one commit.

Every fact that money depends on is in the journal before the step that relies on it: the
reservation before anything is sent, ``submitting`` before each POST, the task id when the answer
arrives, the cost when the provider says the task finished, the ledger row when the take ends. A
rerun reads those rows (:mod:`runner.engine.rejoin`) and picks each take up where it stood: in-flight
tasks are polled by their id before anything new is submitted.

The engine never prints and never picks exit codes; it emits :class:`~runner.engine.events.Event` values
that progress and the run log subscribe to.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from runner.clock import REAL_TIME, Clock
from runner.engine.claims import Claims
from runner.engine.collect import CollectOptions, Collector, Downloader, NotSaved
from runner.engine.cost import uncertain_cost
from runner.engine.events import Bus, Event, EventKind, Outcome, TakeEnd
from runner.engine.flight import Job, Mode, NotStarted, TakeFailed, done_outcome, failed_outcome
from runner.engine.gate import NO_SENDS, Gate, Refusal, StopReason, disk_refusal
from runner.engine.lanes import Lane, LaneOptions
from runner.engine.records import row_of
from runner.engine.rejoin import RESUMED, Policy, rejoin
from runner.engine.retrying import Retry, RetryPolicy
from runner.engine.sending import SUBMIT_RETRY, Encoder, Sender
from runner.engine.tally import DAILY_LIMIT, Summary
from runner.engine.teamfeed import TeamFeed
from runner.engine.unfinished import PENDING_LIMIT
from runner.engine.waiting import TaskWatch
from runner.errors import FailureKind
from runner.manifest.takes import Take
from runner.providers.base import Provider, TaskState, TaskStatus
from runner.store.group import AsyncJournal
from runner.store.records import Money, Record

FINISHED_AT_PROVIDER = frozenset({Mode.FETCH, Mode.REFETCH})
NEEDS_RESERVATION = frozenset({Mode.NEW, Mode.UNCERTAIN})  # a new attempt: new money at stake


@dataclass(frozen=True)
class EngineOptions:
    """How one run behaves; built once by ``runner.cli.run`` and passed down."""

    lanes: Mapping[str, LaneOptions]  # per provider: slots, request rate, poll policy
    take_timeout: float = 900.0  # seconds a task may stay RUNNING at the provider
    pending_limit: float = PENDING_LIMIT  # seconds a task may stay queued there (runner.engine.unfinished)
    submit_retry: RetryPolicy = SUBMIT_RETRY  # how a submit that failed is sent again (where safe)
    collect: CollectOptions = field(default_factory=CollectOptions)  # download retries, URL refreshes
    task_retries: int = 2  # new tasks for a take whose task failed on the provider's side, unbilled
    unreachable_after: float = 60.0  # seconds of failed connections before a provider is given up
    submit_caps: Mapping[str, int | None] = field(default_factory=dict)  # new tasks allowed today
    retry_failed: bool = False  # also retry takes that failed for input/moderation, and cancelled ones
    hold_uncertain: bool = False  # leave takes whose submit may have landed for a person to decide
    clock: Clock = REAL_TIME
    seed: int = 0  # jitter is reproducible under a seed
    run_id: str = ""
    manifest: str = ""


class Engine:
    """Runs takes through their providers, the journal recording every step (see the module doc)."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        downloader: Downloader,
        encoder: Encoder,
        journal: AsyncJournal,
        bus: Bus,
        options: EngineOptions,
        gate: Gate | None = None,
        run_dir: Path | None = None,
        claims: Claims | None = None,
    ) -> None:
        self._opt = options
        self._claims = claims  # team mode: a take is worked on only once this run leased it
        self._policy: Policy | None = None
        self.summary = Summary()
        self._clock = options.clock
        self._rng = random.Random(options.seed)
        self._bus = bus
        self._lanes = {name: self._lane(p, options) for name, p in providers.items()}
        self._clips = Collector(
            downloader,
            options.collect,
            options.clock,
            self._rng,
            on_retry=self._retrying,
            on_start=lambda take: self._bus.emit(Event(EventKind.DOWNLOADING, take)),
        )
        self._sender = Sender(
            options.submit_retry,
            options.unreachable_after,
            encoder=encoder,
            journal=journal,
            bus=bus,
            clock=options.clock,
            rng=self._rng,
            on_retry=self._retrying,
            interrupted=lambda: self.summary.stopped in NO_SENDS,
        )
        self._journal = journal
        self._gate = gate or Gate(budget_usd=None, deadline=None)
        self._watch = TaskWatch(
            options.clock, options.take_timeout, options.pending_limit, self._gate, bus, journal
        )
        self._run_dir = run_dir or journal.sync.run_dir
        self._new_tasks: dict[str, int] = {}  # per provider, for its daily cap
        self._bad_here: set[str] = set()  # takes this run ended failed or cancelled

    def _lane(self, provider: Provider, options: EngineOptions) -> Lane:
        rng = random.Random(f"{options.seed}/{provider.name}")
        return Lane(provider, options.lanes[provider.name], options.clock, rng, partial(self._retrying, None))

    def stop(self, reason: StopReason, message: str) -> None:
        """Submit nothing new; takes in flight still finish and download (Ctrl-C, budget, deadline).

        The first reason sticks, except that an interrupt overrides: the user asked to stop.
        """
        if self.summary.stopped is None or reason is StopReason.INTERRUPTED:
            self.summary.stopped = reason
            self._bus.emit(Event(EventKind.STOPPING, message=message))

    async def run(self, takes: Iterable[Take], records: Mapping[str, Record]) -> Summary:
        """Every take to its end (or as far as the budget, deadline or user allow)."""
        takes = tuple(takes)
        queues = self._rejoin(takes, records)
        if self._claims is None:  # in team mode, only once a take is leased (another run may have it)
            for job in (job for queue in queues.values() for job in queue):
                await self._ready(job)
        self._bus.emit(Event(EventKind.RUN_STARTED, message=str(sum(len(q) for q in queues.values()))))
        async with anyio.create_task_group() as pollers:
            for lane in self._lanes.values():
                pollers.start_soon(lane.poller.run)
            if self._claims is None:
                await self._feed_all(queues)
            else:
                pollers.start_soon(self._claims.keep)
                team = TeamFeed(
                    self._claims, takes, self._feed_all, self._rejoin, lambda: bool(self.summary.stopped)
                )
                await team.run(queues)
                bad = await self._journal.ended_badly()
                self.summary.failed_elsewhere = team.ended_elsewhere(bad, records, self._bad_here)
            pollers.cancel_scope.cancel()
        self.summary.closed = {n: lane.closed_reason for n, lane in self._lanes.items() if lane.closed_reason}
        self._bus.emit(
            Event(EventKind.RUN_FINISHED, message=self.summary.stopped or "", counts=self.summary.counts())
        )
        return self.summary

    async def _feed_all(self, queues: Mapping[str, deque[Job]]) -> None:
        async with anyio.create_task_group() as feeders:
            for name, queue in queues.items():
                feeders.start_soon(self._feed, self._lanes[name], queue)

    async def _ready(self, job: Job) -> None:
        """What a rejoined take needs before it starts: a lost submit written off, a new clip path."""
        if job.mode is Mode.UNCERTAIN:
            await self._write_off(job)
        elif job.mode is Mode.REFETCH:
            job.record = await self._journal.reclaim(job.take.key)

    async def _leased(self, queue: deque[Job]) -> bool:
        """Team mode: the next take leased to this run, fresh from the store; False (and dropped)
        when another live run has it or it has ended."""
        assert self._claims is not None and self._policy is not None
        job = await self._claims.fresh(queue.popleft(), self._policy)
        if job is None:
            return False
        await self._ready(job)
        queue.appendleft(job)
        return True

    # --- which takes, and how each rejoins ------------------------------------------------------

    def _rejoin(self, takes: Iterable[Take], records: Mapping[str, Record]) -> dict[str, deque[Job]]:
        resend_safe = {name: lane.provider.resend_safe for name, lane in self._lanes.items()}
        policy = Policy(self._run_dir, resend_safe, self._opt.retry_failed, self._opt.hold_uncertain)
        self._policy = policy
        found = rejoin(takes, records, policy)
        for name in ("skipped", "failed_earlier", "held", "resumed"):
            setattr(self.summary, name, getattr(self.summary, name) + getattr(found.counts, name))
        for event in found.events:
            self._bus.emit(event)
        return found.queues

    async def _write_off(self, job: Job) -> None:
        """A submit that may have landed unseen: charged at its estimate, then a new attempt."""
        self.summary.uncertain += 1
        message = "a submit may have landed but its answer was lost (crash); resubmitting"
        self._bus.emit(Event(EventKind.WARNING, job.take, message=message))
        lost = Job(job.take, job.record, job.mode, job.estimate, job.record.attempt)
        failure = TakeFailed(FailureKind.UNCERTAIN, message, cost=uncertain_cost(job.estimate))
        await self._record(lost, failed_outcome(lost, failure), count=False)
        job.flags.append("uncertain")

    # --- feeding slots --------------------------------------------------------------------------

    async def _feed(self, lane: Lane, queue: deque[Job]) -> None:
        async with anyio.create_task_group() as tg:
            while queue:
                if self._claims is not None and not await self._leased(queue):
                    continue
                if queue[0].mode not in FINISHED_AT_PROVIDER:  # a finished task holds no provider slot
                    await lane.slots.acquire()
                    if not self._may_start(lane, queue[0]):
                        await lane.slots.release(clean=False)
                        break
                tg.start_soon(self._run_take, lane, queue.popleft())
        if queue:
            self.summary.not_started += len(queue)
            for job in queue:  # team mode: left for a later run, not waited for by this one
                self._done_with(job)
            why = lane.closed_reason or self.summary.stopped
            self._bus.emit(
                Event(EventKind.WARNING, message=f"{lane.name}: {len(queue)} takes not started ({why})")
            )

    def _may_start(self, lane: Lane, job: Job) -> bool:
        """Resumed takes always go on; a new task needs an open lane, a run not stopping, and room
        under the provider's daily cap (counted here, as tasks start)."""
        if job.mode in RESUMED:
            return True
        if self.summary.stopped or lane.closed_reason:
            return False
        cap = self._opt.submit_caps.get(lane.name)
        started = self._new_tasks.get(lane.name, 0)
        if cap is not None and started >= cap:
            lane.close(DAILY_LIMIT)
            return False
        self._new_tasks[lane.name] = started + 1
        return True

    async def _reserve(self, job: Job, write_ahead: Mapping[str, Any]) -> None:
        """The budget and deadline, checked and reserved in one journal transaction with the first
        send's write-ahead row; else NotStarted (and nothing written).

        Done in the take's own task, so the reservations of takes started together share a commit.
        """
        check = partial(self._admit, job.estimate)
        key = job.take.key
        refusal = await self._journal.reserve(key, job.attempt, job.estimate, check, then=write_ahead)
        if refusal is None:
            return
        if refusal.reason is StopReason.DAILY_CAP:  # the account's: its provider's lane only
            self._lanes[job.take.provider].close(f"{DAILY_LIMIT}: {refusal.message}")
        else:
            self.stop(refusal.reason, refusal.message)
        raise NotStarted(refusal.message)

    def _admit(self, estimate: float, money: Money) -> Refusal | None:
        """The gate, inside the reservation's transaction: a stop for a full or read-only disk
        found while this take waited for its commit refuses it before its write-ahead row."""
        stopped = self.summary.stopped
        if stopped in NO_SENDS and stopped is not StopReason.INTERRUPTED:
            return Refusal(stopped, f"{stopped}: no new submissions")
        return self._gate.check(estimate, money)

    # --- a take's life --------------------------------------------------------------------------

    async def _run_take(self, lane: Lane, job: Job) -> None:
        while True:
            try:
                status = await self._generate(lane, job)
                outcome = await self._collect(lane, job, status)
            except NotStarted as why:
                with anyio.CancelScope(shield=True):
                    await self._journal.release(job.take.key)
                self._done_with(job)
                self.summary.not_started += 1
                self._bus.emit(Event(EventKind.WARNING, job.take, message=f"not submitted: {why}"))
                return
            except TakeFailed as failure:
                outcome = failed_outcome(job, failure)
                if failure.retryable and self._may_retry(lane, job):
                    await self._record(job, outcome, count=False)
                    job = await self._next_attempt(lane, job, failure)
                    continue
            await self._record(job, outcome)
            return

    def _may_retry(self, lane: Lane, job: Job) -> bool:
        """Another task for a take whose task failed on the provider's side (and billed nothing)."""
        return job.retries < self._opt.task_retries and self._may_start(lane, replace(job, mode=Mode.NEW))

    async def _next_attempt(self, lane: Lane, job: Job, failure: TakeFailed) -> Job:
        self.summary.retried += 1
        message = f"the provider failed the task ({failure}); trying a new one"
        self._bus.emit(Event(EventKind.RETRYING, job.take, message=message))
        await lane.slots.acquire()
        flags = [*job.flags, "retried"]
        return replace(job, mode=Mode.NEW, attempt=job.attempt + 1, retries=job.retries + 1, flags=flags)

    async def _generate(self, lane: Lane, job: Job) -> TaskStatus:
        """Submit (unless resumed) and wait for a terminal status, holding one of the lane's slots.

        The slot is given back the moment the provider says the task ended, before its end is
        committed: the next take's reservation then shares that commit instead of waiting for it.
        """
        if job.mode in FINISHED_AT_PROVIDER:
            return await self._watch.finished_status(lane, job)
        clean = False
        if job.mode is Mode.POLL:  # submitted by an earlier run: its schedule starts from now
            job.submitted_clock = self._clock.now()
        try:
            if job.mode is not Mode.POLL:
                reserve = partial(self._reserve, job) if job.mode in NEEDS_RESERVATION else None
                await self._sender.submit(lane, job, reserve)
            status = await self._watch.await_terminal(lane, job)
            clean = status.state is TaskState.SUCCEEDED
        finally:
            with anyio.CancelScope(shield=True):
                await lane.slots.release(clean=clean)
        return await self._watch.terminal_status(lane, job, status)

    # --- the clip -------------------------------------------------------------------------------

    async def _collect(self, lane: Lane, job: Job, status: TaskStatus) -> Outcome:
        """The clip to disk. Whatever goes wrong here, the task was paid: the take stays
        ``succeeded`` in the journal and the next run fetches it by task id."""
        try:
            got = await self._clips.collect(
                job.take, job.output, status.output_url, partial(self._refresh, lane, job)
            )
        except NotSaved as exc:
            raise self._unsaved(job, str(exc)) from exc
        except OSError as exc:
            raise self._unwritable(job, exc) from exc
        return done_outcome(job, got)

    async def _refresh(self, lane: Lane, job: Job) -> str | None:
        try:
            return (await self._watch.poll(lane, job, self._clock.now())).output_url
        except TakeFailed as exc:
            raise NotSaved(f"could not refresh the expired URL: {exc}") from exc

    def _unsaved(self, job: Job, message: str) -> TakeFailed:
        return TakeFailed(FailureKind.DOWNLOAD, f"paid but not saved: {message}", cost=job.paid, paid=True)

    def _unwritable(self, job: Job, exc: OSError) -> TakeFailed:
        refusal = disk_refusal(exc)
        if refusal is not None:
            self.stop(refusal.reason, refusal.message)
        where = self._run_dir / job.output
        return self._unsaved(job, f"cannot write {where}: {exc.strerror or exc}")

    # --- the end --------------------------------------------------------------------------------

    async def _record(self, job: Job, outcome: Outcome, *, count: bool = True) -> None:
        """The take's end: journal state, ledger row and reservation in one commit; then the event."""
        row = row_of(outcome, run_id=self._opt.run_id, manifest=self._opt.manifest)
        state = outcome.resume_state or ("succeeded" if outcome.paid_not_saved else outcome.status.value)
        fields = {
            "handle": job.handle,
            "finished_at": row["finished_at"],
            "failure_kind": row["failure_kind"],
            "failure_message": row["failure_message"],
            "flags": outcome.flags,
        }
        if outcome.status is TakeEnd.DONE:
            fields.update(bytes=outcome.bytes, sha256=outcome.sha256)
        with anyio.CancelScope(shield=True):
            written = await self._journal.charge(job.take.key, row, state=state, **fields)
        self.summary.spent_usd += written["cost_usd"] or 0.0
        if count:
            self._count(outcome)
            self._done_with(job)
        self._bus.emit(Event(EventKind.FINISHED, outcome.take, outcome=outcome))

    def _count(self, outcome: Outcome) -> None:
        if outcome.status is TakeEnd.DONE:
            self.summary.done += 1
            return
        self._bad_here.add(outcome.take.key)
        if outcome.status is TakeEnd.CANCELLED:
            self.summary.cancelled += 1
        else:
            self.summary.failed += 1

    def _done_with(self, job: Job) -> None:
        """Team mode: this run has had its go at the take (another may collect a clip it could
        not save, or start what it left)."""
        if self._claims is not None:
            self._claims.pass_over([job.take.key])

    def _retrying(self, take: Take | None, retry: Retry) -> None:
        """A submit, poll or download is about to be retried: counted, and said."""
        self.summary.count_retry(retry.provider, retry.step.value)
        message = str(retry) if take is not None else f"{retry.provider}: {retry}"
        self._bus.emit(Event(EventKind.RETRYING, take, message=message, retry=retry))
