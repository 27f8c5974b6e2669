"""A file the morning's commands write, whole or not at all (an export, a reroll manifest).

Written beside its place and renamed over it, so a full disk or a kill never leaves half a
timeline for an editor to open; a path that cannot be written is exit 2 in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.errors import InputError


def write_text(path: Path, text: str, what: str = "it") -> None:
    """``text`` into ``path`` atomically; InputError naming ``path`` and ``what`` it is if not."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
