"""Whether a run directory can be made and written, decided offline before anything is sent.

An ``output_dir`` (or ``--output``) that is a regular file, lies under one, or sits in a place we may
not write fails only when the engine first writes — after a take has been paid for. So
:func:`check_output_dir` walks up from the run directory to the nearest part that exists and
checks that it is a directory we can write in. It creates nothing: bad input must leave no trace.
``validate`` and ``plan`` ask :func:`output_dir_problem` the same question, so a manifest they
call ok is never refused by ``run`` for its output directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
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
    verb = "write in" if part == path else "create folders in"
    tried = _try_making(part)  # first: it gives the true reason (a read-only mount, /proc)
    if tried is not None:
        return f"cannot {verb} {part} ({tried})"
    if not os.access(part, os.W_OK | os.X_OK):
        return f"cannot {verb} {part} (permission denied)"
    return _run_files_problem(path) if part == path else None


def _try_making(part: Path) -> str | None:
    """Make and remove an empty folder in ``part``: the only sure test (root passes every access
    check, and /proc or a read-only mount refuse only when asked). Nothing is left behind."""
    try:
        probe = tempfile.mkdtemp(prefix=".previz-probe-", dir=part)
    except OSError as exc:
        return exc.strerror or str(exc)
    with contextlib.suppress(OSError):
        os.rmdir(probe)
    return None


#: What previz writes in a run directory (the store, the reports and the lock own these names;
#: listed here because manifest/ may import neither). A folder at one of them fails mid-run.
RUN_FILES = (
    "journal.sqlite",
    ".lock",
    ".lock.json",
    "run.log",
    "ledger.csv",
    "ledger.jsonl",
    "summary.json",
    "report.html",
    "retry.yaml",
)


def _run_files_problem(run_dir: Path) -> str | None:
    for name in RUN_FILES:
        where = run_dir / name
        if where.exists() and not where.is_file():
            return f"{where} is not a regular file, and previz writes its {name} there: move it aside"
    return None


def check_output_dir(run_dir: Path, source: str) -> None:
    """ConfigError naming ``source`` unless ``run_dir`` is, or can be made as, a writable directory."""
    problem = output_dir_problem(run_dir)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
