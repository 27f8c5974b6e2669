"""previz-runner: overnight batch runner for hosted image-to-video generation."""

from __future__ import annotations

__version__ = "0.1.0"
