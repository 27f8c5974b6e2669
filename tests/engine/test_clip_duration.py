"""Simulated takes download clips as long as they asked for, so none is flagged duration_mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.simulator import Simulator
from tests.engine.helpers import ledger_rows, run_against, shot, write_manifest

pytestmark = pytest.mark.anyio


async def test_clip_duration_matches_the_request(sim: Simulator, tmp_path: Path) -> None:
    shots = [
        shot("a", "aimlapi", duration=5),
        shot("b", "runware", duration=8),
        shot("c", "runway", duration=3),
    ]
    summary, run_dir = await run_against(sim, write_manifest(tmp_path, shots))
    assert summary.done == 3
    rows = ledger_rows(run_dir)
    assert sorted(r["duration_s"] for r in rows) == [3, 5, 8]
    for row in rows:
        assert row["clip_duration_s"] == row["duration_s"]
        assert "duration_mismatch" not in row["flags"]
