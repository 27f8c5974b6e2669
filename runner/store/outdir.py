"""Whether a run directory can be made and written, decided offline before anything is sent.

An ``output_dir`` (or ``--output``) that is a regular file, lies under one, or sits in a place we may
not write fails only when the engine first writes — after a take has been paid for. So
:func:`check_output_dir` walks up from the run directory to the nearest part that exists and
checks that it is a directory we can write in. It creates nothing: bad input must leave no trace.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runner.errors import ConfigError


def _nearest_existing(path: Path, source: str) -> tuple[Path, os.stat_result]:
    """The deepest existing part of ``path`` and its stat; ConfigError if a part cannot be looked at."""
    for part in (path, *path.parents):
        try:
            return part, os.stat(part)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not made yet, or under a file: the file is found further up
        except OSError as exc:
            raise ConfigError(f"{source}: {part} cannot be used: {exc.strerror or exc}") from None
    raise ConfigError(f"{source}: no part of {path} exists")


def check_output_dir(run_dir: Path, source: str) -> None:
    """ConfigError naming ``source`` unless ``run_dir`` is, or can be made as, a writable directory."""
    if "\0" in str(run_dir):
        raise ConfigError(f"{source}: the path holds a NUL character")
    path = Path(os.path.abspath(run_dir))
    part, st = _nearest_existing(path, source)
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{source}: {part} is a file, not a directory; choose another output directory")
    if not os.access(part, os.W_OK | os.X_OK):
        verb = "write in" if part == path else "create folders in"
        raise ConfigError(f"{source}: cannot {verb} {part} (permission denied)")
