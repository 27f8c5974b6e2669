"""The reports: what the engine's records become for people and other tools.

Owns: ``ledger.csv``/``ledger.jsonl`` (projections of the store's rows), ``run.log``,
``summary.json``, ``retry.yaml``, ``previz report``, ``report.html``, ``previz status``, and the
morning's selects, OpenTimelineIO export and rerolls.

Reads the store and the engine's events and records; never imports the CLI, and the engine never
imports it.
"""

from __future__ import annotations
