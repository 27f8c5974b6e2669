"""``run.log``: one JSON object per engine event, with every known secret redacted.

Keys never reach this file in the first place (events carry no keys and errors are built
without them); the redaction (:mod:`runner.redact`: any 8-character run of a key, in any case or
URL-encoded) is the belt to that pair of braces, for text that came back from a provider or a library.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, TextIO

from runner.engine.events import Event
from runner.redact import REDACTED, Redactor

__all__ = ["REDACTED", "Redactor", "RunLog"]


class RunLog:
    """Subscriber writing structured lines to ``run.log`` (appended across reruns)."""

    def __init__(self, path: Path, redact: Redactor, *, run_id: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = path.open("a", encoding="utf-8")
        self._redact = redact
        self._run_id = run_id  # runs append to one file: each line says which it belongs to

    def __call__(self, event: Event) -> None:
        if self._fh.closed:
            return
        try:
            self._fh.write(
                self._redact(json.dumps(_record(event, self._run_id), ensure_ascii=False, allow_nan=False))
                + "\n"
            )
            self._fh.flush()
        except OSError:  # a full disk: the log is best effort, the journal is the record
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()


def _record(event: Event, run_id: str) -> dict[str, Any]:
    at = event.at.isoformat().replace("+00:00", "Z")
    record: dict[str, Any] = {"at": at, "run_id": run_id, "event": event.kind.value}
    if event.take is not None:
        record["take"] = event.take.label
        record["provider"] = event.take.provider
    for name in ("message", "state", "progress", "handle"):
        value = getattr(event, name)
        if value not in (None, ""):
            record[name] = str(value) if name == "state" else value
    if event.outcome is not None:
        o = event.outcome
        record.update(
            status=o.status.value, cost_usd=o.cost_usd, failure_kind=o.failure_kind, output=o.output
        )
    if event.counts is not None:
        record["counts"] = dict(event.counts)
    return record
