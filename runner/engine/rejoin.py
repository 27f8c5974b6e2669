"""How each take rejoins a run, decided from its journal row (DESIGN §4: reconcile on start).

Why its own module: this is the one place that reads the journal's states and turns them into
work — poll a task in flight by its id, resend Runware's same taskUUID, fetch a paid clip that
was not saved, write off a submit that may have landed unseen, or skip a take that is done or
failed in a way a rerun would repeat. It decides; the engine does. Nothing here sends anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.engine.cost import Cost, CostSource
from runner.engine.events import Event, EventKind
from runner.engine.flight import Job, Mode
from runner.engine.records import STICKY_FAILURES
from runner.manifest.prices import estimate_usd
from runner.manifest.takes import Take
from runner.store.records import Record

#: Modes of a take that is already at the provider (or done there): no new task, no reservation.
RESUMED = frozenset({Mode.POLL, Mode.RESEND, Mode.FETCH, Mode.REFETCH})


@dataclass(frozen=True)
class Policy:
    """What the decision depends on besides the row: where clips are, and the user's choices."""

    run_dir: Path
    resend_safe: Mapping[str, bool]  # per provider: may a lost submit be resent (Runware)?
    retry_failed: bool  # --retry-failed: also retry sticky failures and cancelled takes
    hold_uncertain: bool  # --hold-uncertain: leave lost submits for a person


@dataclass
class Counts:
    skipped: int = 0
    failed_earlier: int = 0
    held: int = 0
    resumed: int = 0


@dataclass
class Rejoined:
    """Per provider, the takes to work on (those in flight first); what to say; what was skipped."""

    queues: dict[str, deque[Job]]
    events: list[Event] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)


def rejoin(takes: Iterable[Take], records: Mapping[str, Record], policy: Policy) -> Rejoined:
    """Every take's job for this run (or none), in order: resumed ones first per provider."""
    return _Rejoiner(policy).run(takes, records)


class _Rejoiner:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._events: list[Event] = []
        self._counts = Counts()

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def run(self, takes: Iterable[Take], records: Mapping[str, Record]) -> Rejoined:
        names = list(self._policy.resend_safe)
        resumed: dict[str, deque[Job]] = {name: deque() for name in names}
        fresh: dict[str, deque[Job]] = {name: deque() for name in names}
        seen: dict[str, Take] = {}
        for take in takes:
            if take.key in seen:  # same provider, prompt, image, seed…: the same result, made once
                self._skip(take, f"the same take as {seen[take.key].label}")
                continue
            seen[take.key] = take
            job = self._job_for(take, records[take.key])
            if job is not None:
                (resumed if job.mode in RESUMED else fresh)[take.provider].append(job)
        self._counts.resumed = sum(len(q) for q in resumed.values())
        queues = {name: resumed[name] + fresh[name] for name in names}
        return Rejoined(queues, self._events, self._counts)

    def _job_for(self, take: Take, record: Record) -> Job | None:
        mode = self._mode_of(take, record)
        if mode is None:
            return None
        again = mode in RESUMED
        job = Job(
            take,
            record,
            mode,
            estimate=estimate_usd(take.provider, take.model, take.duration),
            attempt=record.attempt if again or record.state == "reserved" else record.attempt + 1,
            handle=record.handle if again else None,
            submits=record.submits if again else 0,
        )
        if take.earlier:
            job.flags.append("earlier-manifest")
        if again:
            job.flags.append("resumed")
            if record.cost_usd is not None:
                source: CostSource = "reported" if record.cost_source == "reported" else "estimated"
                job.paid = Cost(record.cost_usd, source)
            self._emit(Event(EventKind.WARNING, take, message=f"picked up from an earlier run ({mode})"))
        return job

    def _mode_of(self, take: Take, record: Record) -> Mode | None:
        state = record.state
        if state == "done":
            return self._done_mode(take, record)
        if state in ("failed", "cancelled"):
            return self._ended_mode(take, record)
        if state == "submitting":
            return self._submitting_mode(take, record)
        if state == "succeeded":
            return Mode.FETCH if record.charged else Mode.POLL
        if state == "submitted":
            return Mode.POLL
        return Mode.NEW  # planned, or reserved but never sent

    def _done_mode(self, take: Take, record: Record) -> Mode | None:
        clip = self._policy.run_dir / (record.output or take.relpath)
        if not clip.exists():
            self._emit(Event(EventKind.WARNING, take, message=f"clip {clip} is missing: fetching it again"))
            return Mode.FETCH
        size = clip.stat().st_size
        if record.bytes is not None and size != record.bytes:
            message = (
                f"clip {clip} changed since it was saved ({size} bytes, was {record.bytes}); "
                "left alone, and fetched again beside it"
            )
            self._emit(Event(EventKind.WARNING, take, message=message))
            return Mode.REFETCH
        self._skip(take, "done in an earlier run")
        return None

    def _ended_mode(self, take: Take, record: Record) -> Mode | None:
        sticky = record.state == "cancelled" or record.failure_kind in STICKY_FAILURES
        if not sticky or self._policy.retry_failed:
            return Mode.NEW
        if record.state == "failed":
            self._counts.failed_earlier += 1
            self._skip(take, f"failed earlier ({record.failure_kind}); --retry-failed tries again")
        else:
            self._skip(take, "cancelled earlier; --retry-failed tries again")
        return None

    def _submitting_mode(self, take: Take, record: Record) -> Mode | None:
        if self._policy.resend_safe.get(take.provider) and record.handle and not take.earlier:
            return Mode.RESEND  # (never for an earlier manifest's take: its shot is no longer wanted)
        if self._policy.hold_uncertain:
            self._counts.held += 1
            message = "a submit may have landed unseen; held (--hold-uncertain): check the provider"
            self._emit(Event(EventKind.WARNING, take, message=message))
            return None
        return Mode.UNCERTAIN

    def _skip(self, take: Take, why: str) -> None:
        self._counts.skipped += 1
        self._emit(Event(EventKind.SKIPPED, take, message=why))
