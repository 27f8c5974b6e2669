"""Run the Engine directly against the simulator, built the way runner/app.py builds it.

For the tests that need what ``previz run`` does not expose: engine options (take timeout, lane
limits), a wrong key for one provider, or a :class:`~tests.engine.fakes.Recording` wrapper around
each real adapter at the Provider seam, so polls and submits can be counted in the engine's own
clock time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from runner.clock import Clock, ScaledClock
from runner.engine import Engine, EngineOptions, Summary
from runner.events import Bus, Event, Subscriber
from runner.images import ImageEncoder
from runner.lanes import LaneOptions
from runner.ledger import History, Ledger
from runner.manifest import load_manifest
from runner.providers.registry import build_provider, simulated_config
from runner.simulator import Simulator
from tests.conftest import TEST_TIME_SCALE
from tests.engine.fakes import Recording


@dataclass
class DirectRun:
    summary: Summary
    events: list[Event]
    run_dir: Path
    providers: dict[str, Recording]


async def run_engine(
    sim: Simulator,
    manifest: Path,
    *,
    lanes: Mapping[str, LaneOptions] | None = None,
    keys: Mapping[str, str] | None = None,
    take_timeout: float = 900.0,
    retry_failed: bool = False,
    clock: Clock | None = None,
    subscribers: tuple[Subscriber, ...] = (),
) -> DirectRun:
    """Every take of ``manifest`` through an Engine whose providers are recorded at the seam."""
    loaded = load_manifest(manifest)
    takes = list(loaded.takes())
    run_dir = (loaded.output_dir / loaded.name).resolve()
    used = sorted({t.provider for t in takes})
    clock = clock or ScaledClock(TEST_TIME_SCALE)
    all_keys = {**sim.keys, **(keys or {})}
    events: list[Event] = []
    history = History.load(run_dir)
    ledger = Ledger(run_dir, run_id="direct", manifest=str(manifest))
    try:
        async with aiohttp.ClientSession() as session:
            providers = {
                name: Recording(
                    build_provider(simulated_config(name, sim.base_url, all_keys[name]), session), clock
                )
                for name in used
            }
            options = EngineOptions(
                lanes=lanes or {name: LaneOptions(concurrency=loaded.concurrency) for name in used},
                take_timeout=take_timeout,
                retry_failed=retry_failed,
                clock=clock,
            )
            engine = Engine(
                providers,
                session=session,
                run_dir=run_dir,
                encoder=ImageEncoder(),
                history=history,
                bus=Bus(ledger, events.append, *subscribers),
                options=options,
            )
            summary = await engine.run(takes)
    finally:
        ledger.close()
    return DirectRun(summary, events, run_dir, providers)
