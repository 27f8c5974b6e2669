"""What kind of world the simulator plays: speed, seed, account limits and fault odds.

Why a frozen config: one value describes a whole simulated night, so a test, the demo and
``previz simulate`` can name it (a profile plus a few knobs) and get the same world back —
same seed, same faults, same timings.

Profiles:

``clean``
    no faults at all; moderation only by the ``[sim:moderate]`` prompt trigger.
``flaky``
    transient faults only — 5xx, 429 (some with Retry-After), dropped connections on polls and
    downloads, slow answers, truncated downloads, expired first URLs. Every fault is per attempt,
    so a client that retries finishes every take. No moderation, no lost submit answers.
``hostile``
    more of all of the above, plus random moderation failures and submits whose answer is lost
    after the task was registered (the one fault that can make a naive client pay twice).

Units: probabilities are 0..1 per attempt. ``slow_seconds``, ``url_ttl`` and Retry-After values are
in *simulated* seconds (real seconds = simulated × ``time_scale``), because they model the
provider's world, which the runner sees through its own scaled clock. ``hang_seconds`` is in
*real* seconds: it exists to outlast a client's real request timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from runner.simulator.tasks import generation_seconds

PROVIDERS = ("aimlapi", "runware", "runway")

DEFAULT_KEYS: Mapping[str, str] = {
    "aimlapi": "sim-aimlapi-key",
    "runware": "sim-runware-key",
    "runway": "sim-runway-key",
}

#: The faults that are rolled per attempt; ``/_sim/stats`` counts each under this name.
FAULT_NAMES = (
    "http_5xx",
    "http_429",
    "reset",
    "submit_lost_answer",
    "slow",
    "truncate",
    "expire",
    "moderation",
)


@dataclass(frozen=True)
class Faults:
    """Odds (0..1, per attempt) of each fault, plus the parameters some of them need."""

    http_5xx: float = 0.0
    http_429: float = 0.0
    #: share of injected 429s that carry a Retry-After header (simulated seconds)
    retry_after_share: float = 0.5
    #: connection dropped with no answer — polls and downloads only
    reset: float = 0.0
    #: submit registered (and billed when it completes) but the answer never arrives
    submit_lost_answer: float = 0.0
    #: > 0: a lost answer is delayed this many *real* seconds instead of dropped
    hang_seconds: float = 0.0
    slow: float = 0.0
    #: delay of a slow answer, simulated seconds
    slow_seconds: float = 3.0
    #: download body cut short after a full Content-Length was promised
    truncate: float = 0.0
    #: a task's first output URL answers 403
    expire: float = 0.0
    #: a task fails by content moderation (besides the ``[sim:moderate]`` trigger)
    moderation: float = 0.0

    def __post_init__(self) -> None:
        for name in (*FAULT_NAMES, "retry_after_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name}={value!r}: a probability must be within 0..1")
        for name in ("hang_seconds", "slow_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"fault {name} must be >= 0")


PROFILES: Mapping[str, Faults] = {
    "clean": Faults(),
    "flaky": Faults(
        http_5xx=0.05,
        http_429=0.05,
        retry_after_share=0.5,
        reset=0.03,
        slow=0.05,
        slow_seconds=3.0,
        truncate=0.05,
        expire=0.1,
    ),
    "hostile": Faults(
        http_5xx=0.12,
        http_429=0.12,
        retry_after_share=0.5,
        reset=0.08,
        submit_lost_answer=0.05,
        slow=0.1,
        slow_seconds=5.0,
        truncate=0.1,
        expire=0.25,
        moderation=0.1,
    ),
}


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes one simulated world. Build it with :meth:`from_profile`."""

    time_scale: float = 1.0
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    keys: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    #: AIML answers 429 when this many tasks are in flight
    aiml_concurrency: int = 4
    #: Runway tier ``maxConcurrentGenerations``; the excess waits as THROTTLED
    runway_concurrency: int = 4
    #: Runware answers 429 (queue capacity) when this many tasks are in flight
    runware_capacity: int = 50
    #: simulated seconds a result URL stays valid; None = forever
    url_ttl: float | None = None
    #: pad every clip to this many bytes (big-download tests); None = natural size
    clip_bytes: int | None = None
    #: send each download at most this many MB per *real* second (a CDN's per-connection rate,
    #: for the download-limit benchmark); None = as fast as the loopback goes
    download_mbps: float | None = None
    #: Runway organisation credit balance before any spend
    runway_credits: int = 1_000_000
    #: Runway tier ``maxDailyGenerations``; None = no cap. Past it, submit answers 429.
    runway_daily_limit: int | None = None
    #: Runway generations already created today before the world began (``usage.dailyGenerations``)
    runway_daily_used: int = 0
    #: each take's first N Runway tasks fail with ``runway_failure_code`` (deterministic, billed 0)
    runway_fail_first: int = 0
    runway_failure_code: str = "INTERNAL"
    #: AIML answers with ``generation_id`` and no ``id`` (as some AIML video models do)
    aiml_generation_id_only: bool = False
    #: AIML account balance in credits (``GET /v1/billing/balance``) before any spend
    aiml_credits: int = 200_000_000
    #: draw every generation time from U(gen_min_s, gen_max_s) simulated seconds, whatever the
    #: clip's duration (benchmarks want a wide, known spread); None = the duration-based model
    gen_min_s: float | None = None
    gen_max_s: float | None = None
    profile: str = "clean"

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be > 0")
        for name in ("aiml_concurrency", "runway_concurrency", "runware_capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("runway_daily_used", "runway_fail_first"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("runway_daily_limit", "url_ttl", "clip_bytes", "download_mbps"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None")
        self._check_generation_range()
        missing = [p for p in PROVIDERS if p not in self.keys]
        if missing:
            raise ValueError(f"keys: no key for {', '.join(missing)}")

    def _check_generation_range(self) -> None:
        if (self.gen_min_s is None) != (self.gen_max_s is None):
            raise ValueError("gen_min_s and gen_max_s go together")
        if self.gen_min_s is not None and not 0 <= self.gen_min_s <= (self.gen_max_s or 0.0):
            raise ValueError("need 0 <= gen_min_s <= gen_max_s")

    def generation(self, duration: int, jitter: float) -> float:
        """Simulated seconds one task generates, from its uniform draw ``jitter`` in [0, 1)."""
        if self.gen_min_s is not None and self.gen_max_s is not None:
            return self.gen_min_s + (self.gen_max_s - self.gen_min_s) * jitter
        return generation_seconds(duration, jitter)

    def sim_to_real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of simulated time last."""
        return seconds * self.time_scale

    @classmethod
    def from_profile(cls, name: str, *, time_scale: float = 1.0, seed: int = 0, **knobs: Any) -> SimConfig:
        """The named profile, with ``knobs`` overriding any SimConfig or Faults field by name.

        ``SimConfig.from_profile("clean", moderation=1.0, runway_concurrency=2, url_ttl=5.0)``.
        An unknown profile or knob is a ValueError (a typo must not silently drop a setting).
        """
        if name not in PROFILES:
            raise ValueError(f"unknown simulator profile {name!r} (known: {', '.join(PROFILES)})")
        config_names = {f.name for f in fields(cls)} - {"profile", "time_scale", "seed"}
        fault_names = {f.name for f in fields(Faults)}
        unknown = sorted(set(knobs) - config_names - fault_names)
        if unknown:
            raise ValueError(f"unknown simulator knob(s): {', '.join(unknown)}")
        faults = knobs.pop("faults", PROFILES[name])
        if not isinstance(faults, Faults):
            raise ValueError("faults must be a Faults instance")
        fault_knobs = {k: knobs.pop(k) for k in list(knobs) if k in fault_names}
        if fault_knobs:
            faults = replace(faults, **fault_knobs)
        return cls(time_scale=time_scale, seed=seed, faults=faults, profile=name, **knobs)
