"""The engine: a take's life, from its reservation to a verified clip and a ledger row.

Owns: lanes (provider slots and request-rate limits), the budget gate, submits and retries, the
poll schedules and generation-time learning, verified downloads and the piece writer, MP4 checks,
the events it emits and the ledger row a take's end becomes.

It never prints and never picks an exit code: it emits events, and the CLI and reports subscribe.
Never imports ``runner.cli.main`` or ``runner.reports``.
"""

from __future__ import annotations
