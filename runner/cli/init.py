"""``previz init [DIR]``: a starter manifest with sample images, ready for ``previz run``.

Why: someone who installed previz with pipx has no checkout and no demo; this gives them something
that runs at once on the built-in simulator, and that shows the manifest's main fields. It never
overwrites a file: an existing one is exit 2, naming it.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path

from runner.errors import ConfigError
from runner.manifest.outdir import output_dir_problem

MANIFEST = "previz.yaml"


def _files() -> list[tuple[str, bytes]]:
    root = resources.files("runner.cli.starter")
    found = [(MANIFEST, root.joinpath(MANIFEST).read_bytes())]
    images = root.joinpath("images")
    found += [
        (f"images/{item.name}", item.read_bytes()) for item in sorted(images.iterdir(), key=lambda i: i.name)
    ]
    return found


def init(folder: Path) -> list[Path]:
    """Write the starter files into ``folder``; ConfigError (exit 2) if any would overwrite."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder")
    files = _files()
    taken = [folder / name for name, _ in files if (folder / name).exists()]
    if taken:
        raise ConfigError(f"{taken[0]} already exists; previz init never overwrites (choose another folder)")
    problem = output_dir_problem(folder)
    if problem is not None:
        raise ConfigError(problem)
    written: list[Path] = []
    made = [d for d in (folder, folder / "images") if not d.exists()]
    try:
        for name, data in files:
            path = folder / name
            written.append(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except OSError as exc:  # a full or read-only disk under us: no half starter left behind
        _take_back(written, made)
        raise ConfigError(f"cannot write {written[-1]} ({exc.strerror or exc})") from exc
    return written


def _take_back(files: list[Path], folders: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()
