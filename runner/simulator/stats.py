"""The billing log and traffic counters behind ``GET /_sim/stats``.

Why it exists: tests across the project prove money facts against it — "never paid twice"
(``submissions_by_take``), "never over the cap" (``max_in_flight``), "ledger = bill"
(``billed_usd``). So the names here are a contract; add keys, never rename them.

Counting rules:

- ``submissions``: submit requests that passed authentication and reached the provider's handler
  (Runware: each ``videoInference`` task in a request); ``accepted``: those that registered a task;
  ``rejected``: the rest (validation, concurrency/capacity 429, injected 5xx/429, conflicts).
- ``polls``: tasks polled (a Runware request with 10 ``getResponse`` counts 10); ``poll_requests``:
  HTTP requests that polled. Both count on arrival, faults included.
- ``account_checks``: requests that bill nothing and prove a key (Runway ``GET /v1/organization``,
  AIML ``GET /v1/billing/balance``, a Runware request holding only an ``authentication`` task),
  counted on arrival, right key or not — so a pre-flight test can see it asked.
- ``in_flight``: registered and not terminal now (Runway THROTTLED counts); ``max_in_flight``: the
  most at once. ``completed``/``failed``: tasks that reached SUCCEEDED/FAILED by now.
- ``billed_usd``: a task is billed its cost when it *completes successfully*; failed and cancelled
  tasks bill 0 (Runway refunds those). Billing happens at completion time whether or not anyone
  polls, like a real account.
- ``submissions_by_take``: registered tasks per take — Runware by ``taskUUID``; AIML/Runway by the
  sha256 of the canonical JSON body (see ``wire.take_id``). A value above 1 means one take was
  registered (and possibly billed) more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.simulator.tasks import Phase, Task


@dataclass
class ProviderCounters:
    """Request counters for one provider; task-derived figures are computed at snapshot time."""

    submissions: int = 0
    accepted: int = 0
    rejected: int = 0
    polls: int = 0
    poll_requests: int = 0
    max_in_flight: int = 0
    #: key/account checks that bill nothing (Runway organization, AIML balance, Runware
    #: authentication), counted on arrival whether or not the key was right
    account_checks: int = 0

    def snapshot(self, tasks: Iterable[Task], now: float) -> dict[str, Any]:
        phases = [(task, task.phase(now)) for task in tasks]
        billed = sum(task.billed_usd(now) for task, _ in phases)
        return {
            "submissions": self.submissions,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "polls": self.polls,
            "poll_requests": self.poll_requests,
            "billed_usd": round(float(billed), 6),
            "in_flight": sum(1 for _, phase in phases if not phase.terminal),
            "max_in_flight": self.max_in_flight,
            "account_checks": self.account_checks,
            "completed": sum(1 for _, phase in phases if phase is Phase.SUCCEEDED),
            "failed": sum(1 for _, phase in phases if phase is Phase.FAILED),
        }


def build_stats(
    counters: Mapping[str, ProviderCounters],
    tasks: Mapping[str, Iterable[Task]],
    now: float,
    *,
    by_take: Counter[str],
    downloads: int,
    download_bytes: int,
    faults: Counter[str],
) -> dict[str, Any]:
    """The ``/_sim/stats`` document."""
    providers = {name: counters[name].snapshot(tasks[name], now) for name in counters}
    return {
        "providers": providers,
        "submissions_by_take": dict(sorted(by_take.items())),
        "billed_usd": round(float(sum(p["billed_usd"] for p in providers.values())), 6),
        "downloads": downloads,
        "download_bytes": download_bytes,
        "faults": dict(faults),
    }
