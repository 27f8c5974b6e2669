"""Whether a run directory can be made and written, decided offline before anything is sent.

An ``output_dir`` (or ``--output``) that is a regular file, lies under one, or sits in a place we may
not write fails only when the engine first writes — after a take has been paid for. So
:func:`check_output_dir` walks up from the run directory to the nearest part that exists and
checks that it is a directory we can write in. It creates nothing: bad input must leave no trace.
``validate`` and ``plan`` ask :func:`output_dir_problem` the same question, so a manifest they
call ok is never refused by ``run`` for its output directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runner.errors import ConfigError


def _nearest_existing(path: Path) -> tuple[Path, os.stat_result] | str:
    """The deepest existing part of ``path`` and its stat, or why a part cannot be looked at."""
    for part in (path, *path.parents):
        try:
            return part, os.stat(part)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not made yet, or under a file: the file is found further up
        except OSError as exc:
            return f"{part} cannot be used: {exc.strerror or exc}"
    return f"no part of {path} exists"


def output_dir_problem(run_dir: Path) -> str | None:
    """Why ``run_dir`` cannot be, or be made as, a writable directory; None when it can."""
    if "\0" in str(run_dir):
        return "the path holds a NUL character"
    path = Path(os.path.abspath(run_dir))
    found = _nearest_existing(path)
    if isinstance(found, str):
        return found
    part, st = found
    if not stat.S_ISDIR(st.st_mode):
        return f"{part} is a file, not a directory; choose another output directory"
    if not os.access(part, os.W_OK | os.X_OK):
        verb = "write in" if part == path else "create folders in"
        return f"cannot {verb} {part} (permission denied)"
    return None


def check_output_dir(run_dir: Path, source: str) -> None:
    """ConfigError naming ``source`` unless ``run_dir`` is, or can be made as, a writable directory."""
    problem = output_dir_problem(run_dir)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
