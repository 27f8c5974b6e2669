"""The face: argv → one call per command, progress on the terminal, ``previz init``.

Owns: argument parsing, the commands' wiring (``run`` ties manifest, store, engine and reports
together), pre-flight checks, the live view and plain progress lines, and exit codes. It is the only
package that prints errors or picks an exit code (DESIGN §1).

Never imported by any other package of ``runner``.
"""

from __future__ import annotations
