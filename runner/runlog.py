"""``run.log``: one JSON object per engine event, with every known secret redacted.

Keys never reach this file in the first place (events carry no keys and errors are built
without them); the redaction (:mod:`runner.redact`: any 8-character run of a key, in any case or
URL-encoded) is the belt to that pair of braces, for text that came back from a provider or a library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from runner.events import Event
from runner.redact import REDACTED, Redactor

__all__ = ["REDACTED", "Redactor", "RunLog"]


class RunLog:
    """Subscriber writing structured lines to ``run.log`` (appended across reruns)."""

    def __init__(self, path: Path, redact: Redactor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = path.open("a", encoding="utf-8")
        self._redact = redact

    def __call__(self, event: Event) -> None:
        self._fh.write(self._redact(json.dumps(_record(event), ensure_ascii=False)) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _record(event: Event) -> dict[str, Any]:
    record: dict[str, Any] = {"at": event.at.isoformat(), "event": event.kind.value}
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
    return record
