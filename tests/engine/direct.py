"""Run the Engine directly against the simulator, through ``runner.cli.run.run_takes`` itself.

For the tests that need what ``previz run`` does not expose: engine options (take timeout, lane
limits), a wrong key for one provider, a downloader that fails like a full disk, or a
:class:`~tests.engine.fakes.Recording` wrapper around each real adapter at the Provider seam, so
polls and submits can be counted in the engine's own clock time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from runner.cli.run import RunOptions, Wiring, prepare, run_takes
from runner.clock import Clock, ScaledClock
from runner.engine.collect import Downloader
from runner.engine.events import Event, Subscriber
from runner.engine.lanes import LaneOptions
from runner.engine.tally import Summary
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
    downloader: Downloader | None = None,
) -> DirectRun:
    """Every take of ``manifest`` through the real run wiring, providers recorded at the seam."""
    clock = clock or ScaledClock(TEST_TIME_SCALE)
    options = RunOptions(manifest=manifest, simulate=True, retry_failed=retry_failed, clock=clock)
    prepared = prepare(options)
    all_keys = {**sim.keys, **(keys or {})}
    events: list[Event] = []
    async with aiohttp.ClientSession() as session:
        providers = {
            name: Recording(
                build_provider(simulated_config(name, sim.base_url, all_keys[name]), session), clock
            )
            for name in prepared.providers
        }
        summary = await run_takes(
            prepared,
            providers,
            session=session,
            subscribers=(events.append, *subscribers),
            wiring=Wiring(lanes=lanes, take_timeout=take_timeout, downloader=downloader),
        )
    return DirectRun(summary, events, prepared.run_dir, providers)
