"""The manifest: YAML text → a validated :class:`Manifest` → :class:`Take` specs → estimates and a plan.

Owns: fast YAML reading with positions, the schema and the rules, the one-line messages that name
file, line and field, first-frame images, take expansion (keys, seeds, taskUUIDs), the price table
and the offline plan.

Planning is offline: this package never imports the engine, the store, the reports, the providers or
the CLI — only the shared basics at the top of ``runner``.
"""

from __future__ import annotations
