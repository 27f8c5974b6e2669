"""``previz run``: from options to a finished run directory.

Everything that can fail on bad input happens in :func:`prepare`, before any network: the
manifest, its images, the keys of every provider it uses, the run directory. Only then does
:func:`execute` take the run lock, open the journal (whose rows say where every take stands), start
the in-process simulator if asked, and hand the takes to the engine with the ledger, the log and
the caller's progress view subscribed. :func:`run_takes` is the part after the providers exist, so
tests can wrap the real adapters at the seam and still run exactly what ``previz run`` runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import anyio

from runner.cli import team
from runner.cli.interrupts import drive
from runner.cli.preflight import preflight
from runner.cli.terminal import TerminalWatch
from runner.clock import REAL_TIME, Clock
from runner.engine import strays
from runner.engine.claims import Claims
from runner.engine.clips import ClipDownloader
from runner.engine.collect import Downloader
from runner.engine.core import Engine, EngineOptions
from runner.engine.diskcap import DEFAULT_MAX_RUN_GB, RunDiskCap
from runner.engine.download import DEFAULT_PACING, Pacing
from runner.engine.events import Bus, Event, EventKind, Subscriber
from runner.engine.gate import Gate
from runner.engine.lanes import LaneOptions
from runner.engine.records import spec_of
from runner.engine.shared import Account
from runner.engine.tally import Summary
from runner.engine.unfinished import PENDING_LIMIT
from runner.errors import ConfigError
from runner.manifest.document import Manifest, load_manifest, parse_deadline
from runner.manifest.images import ImageEncoder
from runner.manifest.outdir import check_output_dir
from runner.manifest.schema import MAX_CONCURRENCY
from runner.manifest.takes import Take
from runner.netloc import is_loopback
from runner.providers.base import Provider, ProviderConfig
from runner.providers.registry import build_provider, provider_config_from_env, simulated_config
from runner.reports.html import write_report_html
from runner.reports.ledger import LedgerFiles, iter_rows
from runner.reports.report import load
from runner.reports.retry_yaml import write_retry
from runner.reports.runlog import Redactor, RunLog
from runner.reports.summary import RunFacts, write_summary
from runner.store.base import Store
from runner.store.factory import open_store
from runner.store.group import AsyncJournal
from runner.store.owner import LEASE_S, OUTAGE_S, owned
from runner.store.records import Record
from runner.store.runlock import run_lock
from runner.store.sqlite import FILENAME


@dataclass(frozen=True)
class RunOptions:
    """``previz run``'s options, as parsed from the command line (or built by a test)."""

    manifest: Path
    simulate: bool = False
    concurrency: int | None = None
    output: Path | None = None  # relative to the current directory, unlike the manifest's output_dir
    retry_failed: bool = False
    hold_uncertain: bool = False
    budget_usd: float | None = None  # overrides the manifest's budget_usd
    deadline: str | None = None  # overrides the manifest's deadline
    sim_profile: str = "clean"
    sim_time_scale: float = 0.05
    #: clips downloaded at once: 8 fetches 24 clips at a CDN-like 16 MB/s a connection in 1.7 s
    #: (4: 3.2 s); on the bare loopback (disk- and CPU-bound) 4 and 8 differ by noise (perf.py)
    downloads: int = 8
    max_clip_mb: float = 1024.0  # a clip larger than this is refused (a CDN that never stops)
    max_run_gb: float = DEFAULT_MAX_RUN_GB  # all this run's downloads together (runner.engine.diskcap)
    request_timeout: float = 60.0  # one HTTP request to a provider, per attempt
    clock_scale: float | None = None  # testing against a time-scaled simulator: loopback URLs only
    clock: Clock = REAL_TIME
    environ: Mapping[str, str] | None = None
    store: str | None = None  # team mode: a postgresql:// store (else PREVIZ_STORE, else journal.sqlite)
    lease_s: float = LEASE_S  # team mode: how long a take stays a dead run's before another takes it
    store_outage_s: float = OUTAGE_S  # team mode: how long the store may be away before the run stops


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
    store: str | None = None  # the team's store URL, or None: the run directory's journal.sqlite

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({t.provider for t in self.takes}))


def prepare(options: RunOptions) -> Prepared:
    """Check everything offline; raise InputError (exit 2) before anything is sent."""
    manifest = load_manifest(options.manifest)
    takes = tuple(manifest.takes())
    simulate = options.simulate or manifest.simulate
    run_dir = (options.output / manifest.name) if options.output else manifest.run_dir
    check_output_dir(run_dir, "--output" if options.output else f"output_dir in {options.manifest}")
    run_dir = run_dir.resolve()
    used = sorted({t.provider for t in takes})
    env = os.environ if options.environ is None else options.environ
    timeout = options.request_timeout
    configs = {} if simulate else {n: provider_config_from_env(n, env, request_timeout=timeout) for n in used}
    _check_clock_scale(options.clock_scale, configs)
    if options.concurrency is not None and not 1 <= options.concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be 1 to {MAX_CONCURRENCY}, got {options.concurrency}")
    if not 0 < options.max_clip_mb < math.inf:
        raise ConfigError(f"--max-clip-mb must be more than 0, got {options.max_clip_mb}")
    if not 0 < options.max_run_gb < math.inf:
        raise ConfigError(f"--max-run-gb must be more than 0, got {options.max_run_gb}")
    if options.budget_usd is not None and options.budget_usd <= 0:
        raise ConfigError(f"--budget must be more than 0 USD, got {options.budget_usd}")
    budget = options.budget_usd if options.budget_usd is not None else manifest.budget_usd
    deadline_text = options.deadline if options.deadline is not None else manifest.deadline
    deadline = None if deadline_text is None else parse_deadline(deadline_text, datetime.now().astimezone())
    store = team.store_url(options.store, options.lease_s, env)
    return Prepared(options, manifest, takes, run_dir, simulate, configs, budget, deadline, store)


def _check_clock_scale(scale: float | None, configs: Mapping[str, ProviderConfig]) -> None:
    """A scaled runner clock is for a scaled simulator: a real provider would be polled too fast."""
    if scale is None:
        return
    if not 0 < scale <= 1:
        raise ConfigError(f"--clock-scale must be within (0, 1], got {scale}")
    for config in configs.values():
        host = urlsplit(config.base_url).hostname or ""
        if not is_loopback(host):
            raise ConfigError(f"--clock-scale is only for a simulator on loopback, not {config.base_url}")


async def execute(
    prepared: Prepared, *subscribers: Subscriber, terminal: TerminalWatch | None = None
) -> Summary:
    """Run the prepared takes; the run directory's lock is held throughout."""
    with run_lock(prepared.run_dir):
        async with _provider_configs(prepared) as configs, aiohttp.ClientSession() as session:
            providers = {name: build_provider(config, session) for name, config in configs.items()}
            keys = [key for c in configs.values() for key in c.secrets]
            return await run_takes(
                prepared,
                providers,
                session=session,
                subscribers=subscribers,
                keys=keys,
                configs=configs,
                terminal=terminal,
            )


@dataclass(frozen=True)
class Wiring:
    """What a test may change about a run beyond RunOptions (engine limits, the downloader)."""

    lanes: Mapping[str, LaneOptions] | None = None
    take_timeout: float = 900.0
    pending_limit: float = PENDING_LIMIT
    downloader: Downloader | None = None
    pacing: Pacing = DEFAULT_PACING  # the slowest a clip's body may come before it is cut


async def run_takes(
    prepared: Prepared,
    providers: Mapping[str, Provider],
    *,
    session: aiohttp.ClientSession,
    subscribers: tuple[Subscriber, ...] = (),
    keys: list[str] | None = None,
    early: tuple[Event, ...] = (),
    wiring: Wiring = Wiring(),
    configs: Mapping[str, ProviderConfig] | None = None,
    terminal: TerminalWatch | None = None,
) -> Summary:
    """The journal, ledger, log and engine for one run over ``providers`` (the lock already held).

    With ``configs``, the pre-flight runs first (keys, Runway's tier): a refused key is exit 2 with
    nothing sent, and the tier's slots and today's generations left bound the run.
    """
    run_dir, opts = prepared.run_dir, prepared.options
    run_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    run_id = _run_id()
    started = datetime.now(UTC)
    with contextlib.ExitStack() as stack:
        journal = _open_journal(prepared, notes)
        stack.callback(journal.close)
        me = stack.enter_context(owned(journal, warn=notes.append))
        ledger = LedgerFiles(run_dir)
        stack.callback(ledger.close)
        log = RunLog(run_dir / "run.log", Redactor(keys or ()), run_id=run_id)
        stack.callback(log.close)
        ledger.sync(journal)  # rows a kill left unwritten to the files
        records = journal.plan((t.key, t.label, t.provider, spec_of(t), t.relpath) for t in prepared.takes)
        takes, records = strays.added(journal, prepared.takes, records, providers, notes)
        early = (*(Event(EventKind.WARNING, message=note) for note in notes), *early)
        limits = await _preflight(prepared, records, configs, session) if configs else None
        slots = _slots(prepared, limits)
        times = (opts.lease_s, opts.store_outage_s)
        scope = prepared.manifest.name
        accounts = team.accounts(prepared.store, configs or {}, slots, me.token, scope, times, stack)
        team.join(journal, accounts, prepared.budget_usd)
        bus = Bus(log, *subscribers)
        for name in ledger.rewritten:
            bus.emit(
                Event(EventKind.WARNING, message=f"{name} was torn or short: rewritten from the journal")
            )
        for event in (*early, *(limits.warnings if limits else ())):
            bus.emit(event)
        shared = AsyncJournal(journal, on_row=lambda: ledger.sync(journal))
        engine = Engine(
            providers,
            downloader=wiring.downloader or _downloader(session, run_dir, opts, keys or (), wiring.pacing),
            encoder=ImageEncoder(),
            journal=shared,
            bus=bus,
            options=_engine_options(prepared, providers, wiring, limits, run_id, accounts),
            gate=Gate(budget_usd=prepared.budget_usd, deadline=prepared.deadline),
            run_dir=run_dir,
            claims=Claims(shared, me.token, lease_s=opts.lease_s) if prepared.store else None,
        )
        await drive(engine, takes, records, terminal)
        del records  # all 10,000 of a big run, held to here: gone before the end reads the journal again
        await _finish(prepared, engine, journal, ledger, bus, started)
        return engine.summary


def _downloader(
    session: aiohttp.ClientSession, run_dir: Path, opts: RunOptions, keys: Sequence[str], pacing: Pacing
) -> ClipDownloader:
    return ClipDownloader(
        session,
        run_dir,
        limit=opts.downloads,
        max_bytes=int(opts.max_clip_mb * 2**20),
        run_cap=RunDiskCap(int(opts.max_run_gb * 1e9)),
        pacing=pacing,
        secrets=keys,
    )


def _open_journal(prepared: Prepared, notes: list[str]) -> Store:
    """The team's store, or the run directory's journal — a lost one rebuilt from ``ledger.jsonl``
    (never bought again)."""
    run_dir = prepared.run_dir
    if prepared.store:
        outage_s = prepared.options.store_outage_s
        return open_store(run_dir, url=prepared.store, scope=prepared.manifest.name, outage_s=outage_s)
    ledger_rows = run_dir / "ledger.jsonl"
    if (run_dir / FILENAME).exists() or not ledger_rows.is_file():
        return open_store(run_dir)
    rows = list(iter_rows(ledger_rows))
    journal = open_store(run_dir)
    if rows:
        try:
            takes = journal.adopt(rows)
        except BaseException:
            journal.close()
            raise
        notes.append(
            f"{FILENAME} was missing: rebuilt {takes} ended takes from ledger.jsonl ({len(rows)} rows);"
            " takes that were in flight when it was lost are not known and are made again"
        )
    return journal


async def _finish(
    prepared: Prepared, engine: Engine, journal: Store, ledger: LedgerFiles, bus: Bus, started: datetime
) -> None:
    """The run's end: retry.yaml, summary.json, report.html — each best effort (a full disk must
    not turn a finished night into a crash), with a word on whatever could not be written.

    Written in a worker thread: a report of 10,000 takes takes seconds to render, and the loop
    still serves the progress view and signals meanwhile."""
    write = partial(_write_files, prepared, engine.summary, journal, ledger, started)
    for warning in await anyio.to_thread.run_sync(write):
        bus.emit(Event(EventKind.WARNING, message=warning))


def _write_files(
    prepared: Prepared, summary: Summary, journal: Store, ledger: LedgerFiles, started: datetime
) -> list[str]:
    ledger.sync(journal)
    steps = (
        ("retry.yaml", lambda: _write_retry(prepared, journal)),
        ("summary.json", lambda: write_summary(_facts(prepared), summary, journal, started=started)),
        ("report.html", lambda: _write_report(prepared)),
    )
    warnings = []
    for name, step in steps:
        try:
            step()
        except OSError as exc:
            warnings.append(f"cannot write {name} ({exc.strerror or exc})")
    if ledger.failed:
        warnings.append(ledger.failed + "; the next run writes the missing rows")
    return warnings


def _facts(prepared: Prepared) -> RunFacts:
    return RunFacts(
        manifest=prepared.manifest.path,
        name=prepared.manifest.name,
        run_dir=prepared.run_dir,
        keys=frozenset(t.key for t in prepared.takes),
        budget_usd=prepared.budget_usd,
        deadline=prepared.deadline,
    )


def _write_retry(prepared: Prepared, journal: Store) -> None:
    """The takes of this manifest that stand failed, as a manifest of their own."""
    records = journal.records("failed")
    failed = [
        (take, f"{records[take.key].failure_kind}: {records[take.key].failure_message}")
        for take in dict.fromkeys(prepared.takes)
        if take.key in records
    ]
    write_retry(prepared.manifest, failed, prepared.run_dir)


def _write_report(prepared: Prepared) -> None:
    (source,) = load([prepared.run_dir])
    write_report_html(
        source, name=prepared.manifest.name, budget_usd=prepared.budget_usd, manifest=prepared.manifest
    )


@dataclass(frozen=True)
class Limits:
    """What the pre-flight found: slots and submissions allowed per provider, and what to say."""

    slots: Mapping[str, int]
    submit_caps: Mapping[str, int | None]
    warnings: tuple[Event, ...]


async def _preflight(
    prepared: Prepared,
    records: Mapping[str, Record],
    configs: Mapping[str, ProviderConfig],
    session: aiohttp.ClientSession,
) -> Limits:
    """Keys and account limits, checked with requests that bill nothing, before any submit."""
    waiting = ("planned", "reserved", "failed", "cancelled")
    todo = [t for t in prepared.takes if records[t.key].state in waiting]
    concurrency = _concurrency(prepared)
    report = await preflight(configs, session, takes=todo, concurrency=concurrency)
    return Limits(
        slots={name: report.slots(name, concurrency) for name in configs},
        submit_caps={name: report.submit_cap(name) for name in configs},
        warnings=tuple(Event(EventKind.WARNING, message=f.message) for f in report.findings),
    )


def _concurrency(prepared: Prepared) -> int:
    return prepared.options.concurrency or prepared.manifest.concurrency


def _slots(prepared: Prepared, limits: Limits | None) -> dict[str, int]:
    """Each provider's slots for this run: Runway's tier where it says, else the manifest's."""
    tier = limits.slots if limits else {}
    return {name: tier.get(name, _concurrency(prepared)) for name in prepared.providers}


def _engine_options(
    prepared: Prepared,
    providers: Mapping[str, Provider],
    wiring: Wiring,
    limits: Limits | None,
    run_id: str,
    accounts: Mapping[str, Account],
) -> EngineOptions:
    opts, manifest = prepared.options, prepared.manifest
    slots = limits.slots if limits else {}
    return EngineOptions(
        lanes=wiring.lanes
        or {
            name: LaneOptions(concurrency=slots.get(name, _concurrency(prepared)), shared=accounts.get(name))
            for name in providers
        },
        submit_caps=limits.submit_caps if limits else {},
        take_timeout=wiring.take_timeout,
        pending_limit=wiring.pending_limit,
        retry_failed=opts.retry_failed,
        hold_uncertain=opts.hold_uncertain,
        clock=opts.clock,
        run_id=run_id,
        manifest=str(manifest.path),
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
            name: simulated_config(
                name, sim.base_url, sim.keys[name], request_timeout=opts.request_timeout, public_key=True
            )
            for name in prepared.providers
        }


def _run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
