"""A real tmpfs for a test: a full, tiny or read-only disk (root only; the test skips elsewhere)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(place: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``place`` (made here) with mount ``options`` such as ``size=64k,ro``."""
    place.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(place)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], check=False)
