"""The ledger row a take's end becomes: its columns, and how an outcome fills them.

The engine writes these rows into the store in the same commit as the take's end; the ledger
files (:mod:`runner.reports.ledger`) are projections of them. Kept in the engine because the
engine writes them, and the reports read the columns from here, never the other way round.
"""

from __future__ import annotations

import socket
from functools import cache
from typing import Any

from runner.engine.events import Outcome
from runner.errors import FailureKind
from runner.manifest.takes import Take

COLUMNS = (
    "run_id",
    "manifest",
    "shot",
    "take",
    "seed",
    "provider",
    "model",
    "task_id",
    "status",
    "failure_kind",
    "failure_message",
    "duration_s",
    "ratio",
    "prompt",
    "image",
    "cost_usd",
    "cost_source",
    "submitted_at",
    "finished_at",
    "generation_s",
    "attempts",
    "output",
    "bytes",
    "sha256",
    "key",
    "flags",
    "tags",
    "clip_duration_s",
    "width",
    "height",
    "host",
    "seq",
)

#: Failures a plain rerun does not repeat (they would fail the same way): ``--retry-failed`` does.
STICKY_FAILURES = frozenset({FailureKind.INPUT, FailureKind.MODERATION})


def spec_of(t: Take) -> dict[str, Any]:
    """The take's own fields as the ledger shows them (what the journal keeps for ``status``)."""
    return {
        "shot": t.shot,
        "take": t.index,
        "seed": t.seed,
        "provider": t.provider,
        "model": t.model,
        "duration_s": t.duration,
        "ratio": t.ratio,
        "prompt": t.prompt,
        "image": t.image.source if t.image.kind != "data" else f"data:…sha256={t.image.content_id[:12]}",
        "tags": ";".join(t.tags),
    }


def row_of(outcome: Outcome, *, run_id: str, manifest: str) -> dict[str, Any]:
    t = outcome.take
    spec = spec_of(t)
    return {
        "run_id": run_id,
        "manifest": manifest,
        "shot": t.shot,
        "take": t.index,
        "seed": t.seed,
        "provider": t.provider,
        "model": t.model,
        "task_id": outcome.task_id,
        "status": outcome.status.value,
        "failure_kind": outcome.failure_kind.value if outcome.failure_kind else None,
        "failure_message": outcome.failure_message,
        "duration_s": t.duration,
        "ratio": t.ratio,
        "prompt": t.prompt,
        "image": spec["image"],
        "cost_usd": None if outcome.cost_usd is None else round(outcome.cost_usd, 6),
        "cost_source": outcome.cost_source,
        "submitted_at": _iso(outcome.submitted_at),
        "finished_at": _iso(outcome.finished_at),
        "generation_s": None if outcome.generation_s is None else round(outcome.generation_s, 3),
        "attempts": outcome.attempts,
        "output": outcome.output,
        "bytes": outcome.bytes,
        "sha256": outcome.sha256,
        "key": t.key,
        "flags": ";".join(outcome.flags),
        "tags": spec["tags"],
        "clip_duration_s": None if outcome.clip_duration_s is None else round(outcome.clip_duration_s, 3),
        "width": outcome.width,
        "height": outcome.height,
        "host": _host(),
    }


@cache
def _host() -> str:
    """This machine's name, once a process: which machine recorded the take and saved its clip
    (team mode's ledgers and ``report --store`` group by it)."""
    return socket.gethostname()


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
