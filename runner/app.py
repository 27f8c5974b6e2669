"""``previz run``: from options to a finished run directory.

Everything that can fail on bad input happens in :func:`prepare`, before any network: the
manifest, its images, the keys of every provider it uses. Only then does :func:`execute` take the
run lock, start the in-process simulator if asked, and hand the takes to the engine with the
ledger, the log and the caller's progress view subscribed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio

from runner.clock import REAL_TIME, Clock
from runner.engine import Engine, EngineOptions, Summary
from runner.errors import ConfigError, LockHeldError
from runner.events import Bus, Subscriber
from runner.gate import Gate, StopReason
from runner.images import ImageEncoder
from runner.lanes import LaneOptions
from runner.ledger import History, Ledger
from runner.manifest import Manifest, load_manifest, parse_deadline
from runner.outdir import check_output_dir
from runner.providers.base import ProviderConfig
from runner.providers.registry import build_provider, provider_config_from_env, simulated_config
from runner.runlog import Redactor, RunLog
from runner.takes import Take


@dataclass(frozen=True)
class RunOptions:
    manifest: Path
    simulate: bool = False
    concurrency: int | None = None
    output: Path | None = None
    retry_failed: bool = False
    budget_usd: float | None = None  # overrides the manifest's budget_usd
    deadline: str | None = None  # overrides the manifest's deadline
    sim_profile: str = "clean"
    sim_time_scale: float = 0.05
    downloads: int = 4
    request_timeout: float = 60.0  # one HTTP request to a provider, per attempt
    clock: Clock = REAL_TIME
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Prepared:
    options: RunOptions
    manifest: Manifest
    takes: tuple[Take, ...]
    run_dir: Path
    simulate: bool
    configs: Mapping[str, ProviderConfig]  # empty when simulating: the simulator supplies them
    budget_usd: float | None
    deadline: datetime | None

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({t.provider for t in self.takes}))


def prepare(options: RunOptions) -> Prepared:
    """Check everything offline; raise InputError (exit 2) before anything is sent."""
    manifest = load_manifest(options.manifest)
    takes = tuple(manifest.takes())
    simulate = options.simulate or manifest.simulate
    run_dir = (options.output or manifest.output_dir) / manifest.name
    check_output_dir(run_dir, "--output" if options.output else f"output_dir in {options.manifest}")
    used = sorted({t.provider for t in takes})
    env = os.environ if options.environ is None else options.environ
    timeout = options.request_timeout
    configs = {} if simulate else {n: provider_config_from_env(n, env, request_timeout=timeout) for n in used}
    if options.concurrency is not None and options.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if options.budget_usd is not None and options.budget_usd <= 0:
        raise ConfigError(f"--budget must be more than 0 USD, got {options.budget_usd}")
    budget = options.budget_usd if options.budget_usd is not None else manifest.budget_usd
    deadline_text = options.deadline or manifest.deadline
    deadline = parse_deadline(deadline_text, datetime.now().astimezone()) if deadline_text else None
    return Prepared(options, manifest, takes, run_dir.resolve(), simulate, configs, budget, deadline)


async def execute(prepared: Prepared, *subscribers: Subscriber) -> Summary:
    """Run the prepared takes; the run directory's lock is held throughout."""
    run_dir = prepared.run_dir
    with _lock(run_dir):
        async with _provider_configs(prepared) as configs:
            return await _run(prepared, configs, subscribers)


async def _run(
    prepared: Prepared, configs: Mapping[str, ProviderConfig], subscribers: tuple[Subscriber, ...]
) -> Summary:
    opts, manifest = prepared.options, prepared.manifest
    ledger = Ledger(prepared.run_dir, run_id=_run_id(), manifest=str(manifest.path))
    log = RunLog(prepared.run_dir / "run.log", Redactor(c.api_key.reveal() for c in configs.values()))
    bus = Bus(log, ledger, *subscribers)
    concurrency = opts.concurrency or manifest.concurrency
    options = EngineOptions(
        lanes={name: LaneOptions(concurrency=concurrency) for name in configs},
        downloads=opts.downloads,
        retry_failed=opts.retry_failed,
        clock=opts.clock,
    )
    history = History.load(prepared.run_dir)
    gate = Gate(budget_usd=prepared.budget_usd, deadline=prepared.deadline, spent_before=history.spent_usd)
    try:
        async with aiohttp.ClientSession() as session:
            providers = {name: build_provider(config, session) for name, config in configs.items()}
            engine = Engine(
                providers,
                session=session,
                run_dir=prepared.run_dir,
                encoder=ImageEncoder(),
                history=history,
                bus=bus,
                options=options,
                gate=gate,
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(_on_signals, engine, tg.cancel_scope)
                await engine.run(prepared.takes)
                tg.cancel_scope.cancel()
            return engine.summary
    finally:
        ledger.close()
        log.close()


async def _on_signals(engine: Engine, scope: anyio.CancelScope) -> None:
    """First Ctrl-C/SIGTERM: stop submitting and drain. Second: stop at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if engine.summary.stopped is StopReason.INTERRUPTED:
                scope.cancel()
                return
            engine.stop(
                StopReason.INTERRUPTED, "interrupted: finishing takes in flight; again to stop at once"
            )


@contextlib.asynccontextmanager
async def _provider_configs(prepared: Prepared) -> AsyncIterator[Mapping[str, ProviderConfig]]:
    if not prepared.simulate:
        yield prepared.configs
        return
    from runner.simulator import SimConfig, running_simulator

    opts = prepared.options
    sim_config = SimConfig.from_profile(opts.sim_profile, time_scale=opts.sim_time_scale)
    async with running_simulator(sim_config) as sim:
        yield {
            name: simulated_config(name, sim.base_url, sim.keys[name], request_timeout=opts.request_timeout)
            for name in prepared.providers
        }


@contextlib.contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    """One run per run directory: a second one gets LockHeldError (exit 4)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockHeldError(f"another run of this manifest is going (lock {path})") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
