"""The simulated world: a clock, every registered task, Runway's queue, URLs handed out, counters.

One ``World`` lives in each app. Handlers ask it to register tasks, look them up, issue and check
output URLs, and snapshot the stats; the provider modules only translate between it and their
wire format. Time is lazy: nothing happens between requests, and every question is answered
from timestamps at the moment it is asked (``tasks.py`` explains why).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from runner.simulator.config import PROVIDERS, SimConfig
from runner.simulator.faults import Dice, FaultInjector
from runner.simulator.stats import ProviderCounters, build_stats
from runner.simulator.tasks import MODERATION_SHARE, Task

#: A prompt containing this fails by moderation, whatever the fault odds: tests' deterministic lever.
MODERATION_TRIGGER = "[sim:moderate]"

UrlState = Literal["ok", "expired", "forbidden"]


@dataclass(frozen=True)
class UrlGrant:
    """One output URL handed out: which file, when, and whether the expire fault doomed it."""

    file_id: str
    issued_at: float
    doomed: bool


class World:
    """All mutable simulator state. Single-threaded: used only from the app's event loop."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.dice = Dice(config.seed)
        self.faults = FaultInjector(config.faults, self.dice)
        self._clock = clock
        self._t0 = clock()
        self.epoch = datetime.now(UTC).replace(microsecond=0)
        self.tasks: dict[str, dict[str, Task]] = {p: {} for p in PROVIDERS}
        self.files: dict[str, Task] = {}
        self._live: dict[str, list[Task]] = {p: [] for p in PROVIDERS}  # perhaps in flight
        self.counters = {p: ProviderCounters() for p in PROVIDERS}
        self.by_take: Counter[str] = Counter()
        self.downloads = 0
        self.download_bytes = 0
        self._grants: dict[str, UrlGrant] = {}
        self._runway_waiting: deque[Task] = deque()
        self._runway_started: list[Task] = []
        self._last_runway_start = 0.0

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since the world began."""
        return (self._clock() - self._t0) / self.config.time_scale

    def timestamp(self, sim_seconds: float) -> str:
        """ISO 8601 UTC for a simulated instant (``createdAt``)."""
        moment = self.epoch + timedelta(seconds=sim_seconds)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # -- tasks --------------------------------------------------------------------------------

    def register(
        self,
        provider: str,
        *,
        take_id: str,
        duration: int,
        prompt: str,
        cost_usd: float,
        seed: int | None = None,
        task_id: str | None = None,
        extras: dict[str, Any] | None = None,
    ) -> Task:
        """Accept a task: decide its fate from the seed and the take, and start (or queue) it."""
        occurrence = self.by_take[take_id]
        task_key = task_id if task_id is not None else f"{take_id}#{occurrence}"
        if task_id is None:
            task_id = self.dice.uuid4("task-id", provider, task_key)
        moderated = self.faults.moderation(f"{provider}:{task_key}", triggered=MODERATION_TRIGGER in prompt)
        failure_code = None if moderated else self._injected_failure(provider, occurrence)
        generation = self.config.generation(duration, self.dice.uniform("latency", provider, task_key))
        now = self.now()
        task = Task(
            provider=provider,
            task_id=task_id,
            take_id=take_id,
            file_id=self.dice.uuid4("video", provider, task_key),
            duration=duration,
            seed=seed if seed is not None else self.dice.integer(1, 2**31 - 1, "seed", provider, task_key),
            created_at=now,
            run_seconds=generation * MODERATION_SHARE if moderated or failure_code else generation,
            moderated=moderated,
            failure_code=failure_code,
            cost_usd=cost_usd,
            extras=extras or {},
        )
        self.tasks[provider][task_id] = task
        self._live[provider].append(task)
        self.files[task.file_id] = task
        self.by_take[take_id] += 1
        counters = self.counters[provider]
        counters.accepted += 1
        if provider == "runway":
            self._runway_waiting.append(task)
            self.advance()
        else:
            task.start_at = now
        counters.max_in_flight = max(counters.max_in_flight, self.in_flight(provider))
        return task

    def _injected_failure(self, provider: str, occurrence: int) -> str | None:
        """The failure code forced on a take's ``occurrence``-th task (0-based), if any."""
        if provider == "runway" and occurrence < self.config.runway_fail_first:
            return self.config.runway_failure_code
        return None

    def created_today(self, provider: str) -> int:
        """Tasks created in the simulated day so far (Runway: plus ``runway_daily_used``)."""
        earlier = self.config.runway_daily_used if provider == "runway" else 0
        return earlier + len(self.tasks[provider])

    def find(self, provider: str, task_id: str) -> Task | None:
        task = self.tasks[provider].get(task_id)
        if task is None or task.deleted:
            return None
        if provider == "runway":
            self.advance()
        return task

    def in_flight(self, provider: str) -> int:
        if provider == "runway":
            self.advance()
        now = self.now()
        live = [task for task in self._live[provider] if task.in_flight(now)]
        self._live[provider] = live  # a terminal task never comes back: 10k-task runs stay linear
        return len(live)

    def advance(self) -> None:
        """Start THROTTLED Runway tasks whose slot has come free by now, first come first served.

        The queue head starts at the later of its creation and the previous start, or — if every
        slot is busy then — when enough running tasks have ended (or been cancelled). Starts are
        committed only once they are in the past, so a later cancellation can still move them up.
        """
        now = self.now()
        cap = self.config.runway_concurrency
        while self._runway_waiting:
            head = self._runway_waiting[0]
            if head.cancelled_at is not None:
                self._runway_waiting.popleft()
                continue
            earliest = max(head.created_at, self._last_runway_start)
            self._runway_started = [
                t for t in self._runway_started if (end := t.slot_end) is not None and end > earliest
            ]
            ends = sorted(end for t in self._runway_started if (end := t.slot_end) is not None)
            start = earliest if len(ends) < cap else ends[len(ends) - cap]
            if start > now:
                return
            head.start_at = start
            self._last_runway_start = start
            self._runway_started.append(head)
            self._runway_waiting.popleft()

    def cancel(self, task: Task) -> bool:
        """Cancel a task still in flight (True), or delete a finished one (False)."""
        self.advance()
        now = self.now()
        if task.in_flight(now):
            task.cancelled_at = now
            self.advance()
            return True
        task.deleted = True
        return False

    # -- output URLs --------------------------------------------------------------------------

    def issue_url(self, task: Task, origin: str) -> str:
        """A fresh signed URL for the task's clip. Each poll hands out a new one."""
        n = task.urls_issued
        task.urls_issued += 1
        token = self.dice.token("url", task.file_id, n)
        doomed = n == 0 and self.faults.expire_first_url(f"{task.provider}:{task.task_id}")
        self._grants[token] = UrlGrant(task.file_id, self.now(), doomed)
        return f"{origin}/files/{task.file_id}.mp4?token={token}"

    def url_state(self, file_id: str, token: str | None) -> UrlState:
        grant = self._grants.get(token or "")
        task = self.files.get(file_id)
        if grant is None or grant.file_id != file_id or task is None or task.deleted:
            return "forbidden"
        ttl = self.config.url_ttl
        if grant.doomed or (ttl is not None and self.now() - grant.issued_at > ttl):
            return "expired"
        return "ok"

    def task_times(self) -> dict[str, Any]:
        """Every task's registration, start and end in simulated seconds (``/_sim/tasks``)."""
        self.advance()
        rows = [
            {
                "provider": t.provider,
                "id": t.task_id,
                "created_at": t.created_at,
                "start_at": t.start_at,
                "end_at": t.end_at,
            }
            for tasks in self.tasks.values()
            for t in tasks.values()
        ]
        return {"now": self.now(), "tasks": rows}

    # -- stats --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        self.advance()
        return build_stats(
            self.counters,
            {p: list(self.tasks[p].values()) for p in PROVIDERS},
            self.now(),
            by_take=self.by_take,
            downloads=self.downloads,
            download_bytes=self.download_bytes,
            faults=self.faults.injected,
        )
