"""The three providers' wire APIs as a real local server: the far side of the wire for tests and demos.

It imports nothing from the rest of ``runner``: it is written from ``providers.md`` and the source
documents alone, so a misreading of the docs cannot hide in both the client and its simulator.

    async with running_simulator(SimConfig.from_profile("flaky", time_scale=0.01, seed=3)) as sim:
        ...  # AIML, Runware and Runway all at sim.base_url; money facts at sim.stats()

Module map: ``config`` (profiles, knobs) · ``faults`` (seeded dice) · ``tasks`` (a task's life in
simulated time) · ``state`` (the world) · ``stats`` (``/_sim/stats``) · ``aiml`` / ``runware`` /
``runway`` (each provider's routes, validation, envelopes) · ``files`` + ``mp4`` (the clips) ·
``inputs`` (shared field checks) · ``wire`` (HTTP plumbing) · ``server`` (the app and its servers).
"""

from __future__ import annotations

from runner.simulator.config import Faults, SimConfig
from runner.simulator.server import Simulator, build_app, running_simulator, serve
from runner.simulator.state import MODERATION_TRIGGER

__all__ = [
    "MODERATION_TRIGGER",
    "Faults",
    "SimConfig",
    "Simulator",
    "build_app",
    "running_simulator",
    "serve",
]
