"""Helpers for run-level tests: manifests in tmp_path and in-process runs against the simulator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from runner.cli.run import RunOptions, execute, prepare
from runner.clock import ScaledClock
from runner.engine.events import Event
from runner.engine.tally import Summary
from runner.simulator import Simulator
from tests.conftest import TEST_TIME_SCALE

KEY_VARS = {"aimlapi": "AIMLAPI_API_KEY", "runware": "RUNWARE_API_KEY", "runway": "RUNWAYML_API_SECRET"}
URL_VARS = {"aimlapi": "AIMLAPI_BASE_URL", "runware": "RUNWARE_BASE_URL", "runway": "RUNWAYML_BASE_URL"}
DURATION = {"aimlapi": 5, "runware": 6, "runway": 5}


def shot(
    sid: str, provider: str, *, takes: int = 1, prompt: str | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": sid,
        "prompt": prompt or f"A slow dolly shot over {sid}",
        "image": f"https://example.com/{sid}.jpg",
        "provider": provider,
        "duration": DURATION[provider],
    }
    if "seeds" not in extra:
        doc["takes"] = takes
    return {**doc, **extra}


def write_manifest(
    tmp_path: Path, shots: Sequence[dict[str, Any]], *, name: str = "t", concurrency: int = 4, **top: Any
) -> Path:
    doc = {
        "version": 1,
        "name": name,
        "provider": shots[0]["provider"],
        "concurrency": concurrency,
        "output_dir": str(tmp_path / "out"),
        **top,
        "shots": list(shots),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def sim_env(sim: Simulator, providers: Sequence[str] = ("aimlapi", "runware", "runway")) -> dict[str, str]:
    env: dict[str, str] = {}
    for p in providers:
        env[KEY_VARS[p]] = sim.keys[p]
        env[URL_VARS[p]] = sim.base_url
    return env


async def run_against(
    sim: Simulator, manifest: Path, *, events: list[Event] | None = None, **options: Any
) -> tuple[Summary, Path]:
    """Run ``manifest`` in-process against ``sim`` with the runner's clock at the test time scale."""
    opts = RunOptions(manifest=manifest, environ=sim_env(sim), clock=ScaledClock(TEST_TIME_SCALE), **options)
    prepared = prepare(opts)
    sink = events if events is not None else []
    summary = await execute(prepared, sink.append)
    return summary, prepared.run_dir


def ledger_rows(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]
