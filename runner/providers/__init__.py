"""The wire to each provider, behind one seam (:class:`runner.providers.base.Provider`).

Owns: the Provider protocol and its neutral types, one adapter per hosted API (request shapes,
status, error and cost mapping, cancel, account checks), the bounded HTTP calls translated into
:mod:`runner.errors`, and the configs read from the environment.

Adapters know nothing of scheduling or records: this package never imports the engine, the store,
the reports or the CLI (only the take specs of :mod:`runner.manifest` and the shared basics).
"""

from __future__ import annotations
