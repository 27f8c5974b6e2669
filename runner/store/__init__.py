"""The store: the durable record of every take (write-ahead states, reservations, ledger rows).

Owns: the :class:`~runner.store.base.Store` protocol, its SQLite backend (``journal.sqlite``, the
default), the run lock and the output directory's checks. Nothing outside this package touches SQL.

Never imports the engine, the reports or the CLI.
"""

from __future__ import annotations
