"""Command line: argv → options → one call into the library. The only module that prints.

Exit codes (DESIGN §1): 0 every take done · 1 some takes failed · 2 bad input, nothing submitted ·
3 stopped by budget or deadline with takes left · 4 lock held · 130 interrupted (state saved).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from runner import __version__
from runner.errors import ConfigError, InputError, LockHeldError, ManifestError, PrevizError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from runner.manifest import Manifest
    from runner.preflight import PreflightReport
    from runner.tally import Summary

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_STOPPED = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130
_UNSAFE = {"Cc", "Zl", "Zp"}
#: Slowest simulator: 1 is real time, 1000 stretches a 60 s generation to 17 hours; beyond that a
#: simulated wait only risks overflowing the event loop's timers.
MAX_TIME_SCALE = 1000.0


def one_line(text: str) -> str:
    """``text`` with control characters and line separators escaped (``\\n``, ``\\x1b``).

    Messages quote what the user wrote — a key, a path, a prompt — and one holding a newline or
    an ANSI escape must not break the one-line-per-problem format or drive the terminal.
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _UNSAFE else ch
        for ch in text
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from runner.manifest import load_manifest

    try:
        manifest = load_manifest(Path(args.manifest))
    except ManifestError as exc:
        for problem in exc.problems:
            print(one_line(str(problem)), file=sys.stderr)
        count = len(exc.problems)
        print(f"{one_line(args.manifest)}: {count} problem{'' if count == 1 else 's'}", file=sys.stderr)
        return EXIT_INPUT
    _print_warnings(manifest)
    print(f"{args.manifest}: ok — {len(manifest.shots)} shots, {manifest.take_count()} takes")
    return EXIT_OK


def _print_warnings(manifest: Manifest) -> None:
    for warning in manifest.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _cmd_plan(args: argparse.Namespace) -> int:
    from runner.manifest import load_manifest
    from runner.plan import build_plan, render_plan_text
    from runner.preflight import render_preflight

    manifest = load_manifest(Path(args.manifest))
    _print_warnings(manifest)
    done, spent = _history(manifest)
    plan = build_plan(manifest, done_keys=done, spent_before_usd=spent)
    report = None if args.offline else _plan_preflight(manifest, done)
    if args.json:
        doc = plan.to_json()
        doc["preflight"] = report.to_json() if report is not None else None
        print(json.dumps(doc, indent=2))
    else:
        print(render_plan_text(plan))
        if report is not None:
            print()
            print(render_preflight(report))
    return EXIT_OK


def _plan_preflight(manifest: Manifest, done: set[str]) -> PreflightReport:
    """The pre-flight of the takes still to do; a key that is set but unusable says how to skip it."""
    import asyncio

    from runner.errors import ConfigError
    from runner.preflight import check_manifest

    todo = [t for t in manifest.takes() if t.key not in done]
    try:
        return asyncio.run(check_manifest(manifest, todo))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (previz plan --offline skips the key check)") from exc


def _history(manifest: Manifest) -> tuple[set[str], float]:
    """Keys already done and USD spent in this manifest's run directory (none before the first run)."""
    from runner.journal import FILENAME, Journal

    if not (manifest.run_dir / FILENAME).exists():
        return set(), 0.0
    journal = Journal.open(manifest.run_dir, readonly=True)
    try:
        done = {k for k, r in journal.records().items() if r.state == "done"}
        return done, journal.money().spent_usd
    finally:
        journal.close()


def _cmd_schema(args: argparse.Namespace) -> int:
    from runner.manifest import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from runner.simulator import SimConfig, serve

    keys = _sim_keys(args.key)
    knobs = dict(_knob(text) for text in args.knobs)
    try:
        config = SimConfig.from_profile(
            args.profile, time_scale=args.time_scale, seed=args.seed, keys=keys, **knobs
        )
    except ValueError as exc:
        raise ConfigError(f"simulate: {exc}") from None

    def ready(base_url: str) -> None:
        print(f"previz simulator ({args.profile}, time scale {args.time_scale}) on {base_url}")
        for var in ("AIMLAPI_BASE_URL", "RUNWARE_BASE_URL", "RUNWAYML_BASE_URL"):
            print(f"  export {var}={base_url}")
        for var, provider in SIM_KEY_VARS.items():
            print(f"  export {var}={shlex.quote(config.keys[provider])}")
        print(f"  stats: {base_url}/_sim/stats — Ctrl-C stops")
        sys.stdout.flush()

    serve(config, host=args.host, port=args.port, on_ready=ready)
    return EXIT_OK


#: The variable ``previz run`` reads each provider's key from, and so what ``simulate`` prints.
SIM_KEY_VARS = {"AIMLAPI_API_KEY": "aimlapi", "RUNWARE_API_KEY": "runware", "RUNWAYML_API_SECRET": "runway"}


def _sim_keys(pairs: Sequence[str] | None) -> dict[str, str]:
    """``--key NAME=VALUE`` options over the simulator's default keys; NAME is a variable or a provider."""
    from runner.errors import ConfigError
    from runner.simulator.config import DEFAULT_KEYS

    keys = dict(DEFAULT_KEYS)
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        provider = SIM_KEY_VARS.get(name, name)
        if not sep or not value or provider not in keys:
            known = ", ".join([*SIM_KEY_VARS, *keys])
            raise ConfigError(f"--key {name or pair!r}: expected NAME=VALUE with NAME one of {known}")
        keys[provider] = value
    return keys


def _knob(text: str) -> tuple[str, float | int]:
    """``NAME=NUMBER`` from ``previz simulate --set`` (an integer where it is written as one)."""
    name, _, value = text.partition("=")
    try:
        return name.strip(), int(value) if value.strip().lstrip("-").isdigit() else float(value)
    except ValueError:
        raise ConfigError(f"--set {text}: expected NAME=NUMBER") from None


def _cmd_run(args: argparse.Namespace) -> int:
    import anyio
    from rich.console import Console

    from runner.app import RunOptions, execute, prepare
    from runner.clock import REAL_TIME, ScaledClock
    from runner.progress import Progress

    options = RunOptions(
        manifest=Path(args.manifest),
        simulate=args.simulate,
        concurrency=args.concurrency,
        output=Path(args.output) if args.output else None,
        retry_failed=args.retry_failed,
        hold_uncertain=args.hold_uncertain,
        budget_usd=args.budget,
        deadline=args.deadline,
        sim_profile=args.sim_profile,
        sim_time_scale=args.sim_time_scale,
        clock_scale=args.clock_scale,
        max_clip_mb=args.max_clip_mb,
        clock=ScaledClock(args.clock_scale) if args.clock_scale else REAL_TIME,
    )
    prepared = prepare(options)
    console = Console(highlight=False, stderr=args.json)  # --json: stdout carries the summary only
    mode = "simulator (no key needed)" if prepared.simulate else "live providers"
    console.print(f"previz run {prepared.manifest.name}: {len(prepared.takes)} takes on {mode}", markup=False)
    console.print(f"run directory: {prepared.run_dir}", markup=False)
    shots: dict[str, int] = {}
    for take in prepared.takes:
        shots[take.shot] = shots.get(take.shot, 0) + 1
    progress = Progress(console, shots=shots)
    with progress.live():
        summary = anyio.run(execute, prepared, progress)
    console.print(render_summary(summary, prepared.run_dir))
    _print_paths(console, prepared.run_dir)
    if args.json:
        print((prepared.run_dir / "summary.json").read_text(encoding="utf-8"), end="")
    return _run_exit(summary, console)


def _print_paths(console: Console, run_dir: Path) -> None:
    """The files a person opens in the morning, in full, one per line (never cut by the width)."""
    for name in ("report.html", "ledger.csv", "summary.json", "retry.yaml"):
        if (run_dir / name).exists():
            console.print(f"{name}: {run_dir / name}", markup=False, soft_wrap=True)


def _run_exit(summary: Summary, console: Console) -> int:
    from runner.gate import StopReason

    if summary.failed_earlier:
        console.print(
            f"{summary.failed_earlier} takes failed in earlier runs and were not retried; "
            "--retry-failed tries them again",
            markup=False,
        )
    if summary.stopped is StopReason.INTERRUPTED:
        console.print("interrupted: takes that finished are recorded; run the same command again to go on")
        return EXIT_INTERRUPTED
    if summary.stopped in (StopReason.BUDGET, StopReason.DEADLINE) and summary.not_started:
        console.print(f"stopped by the {summary.stopped}: {summary.not_started} takes left for a later run")
        return EXIT_STOPPED
    for provider, reason in summary.closed.items():
        console.print(f"{provider}: {reason}", markup=False)
    if summary.daily_limited and summary.not_started and not summary.failed:
        console.print(
            f"{summary.not_started} takes left for tomorrow's quota: run the same command again then"
        )
        return EXIT_STOPPED
    return EXIT_OK if summary.ok else EXIT_FAILED


def render_summary(summary: Summary, run_dir: Path) -> Table:
    from rich.table import Table

    table = Table(title="summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right", overflow="fold")
    rows = [
        ("done", summary.done),
        ("failed", summary.failed),
        ("cancelled", summary.cancelled),
        ("skipped (earlier runs)", summary.skipped),
        ("resumed from an earlier run", summary.resumed),
        ("uncertain, resubmitted", summary.uncertain),
        ("retried with a new task", summary.retried),
        ("not started", summary.not_started),
        ("spent this run (USD)", f"{summary.spent_usd:.4f}"),
    ]
    for what, value in rows:
        if value or what in ("done", "failed", "spent this run (USD)"):
            table.add_row(what, str(value))
    if summary.stopped:
        table.add_row("stopped by", str(summary.stopped))
    return table


def _cmd_status(args: argparse.Namespace) -> int:
    from runner.status import resolve_run_dir, status

    report = status(resolve_run_dir(Path(args.target)))
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return EXIT_OK
    print(f"run directory: {report['run_dir']}")
    print("a run is going: " + report["holder"] if report["running"] else "no run is going")
    print("takes: " + ", ".join(f"{n} {state}" for state, n in report["counts"].items()))
    print(f"spent: {report['spent_usd']:.4f} USD; held for takes in flight: {report['reserved_usd']:.4f} USD")
    for take in report["takes"]:
        extra = "; ".join(x for x in (take["failure"], take["clip"] and f"clip {take['clip']}") if x)
        cost = "" if take["cost_usd"] is None else f" ${take['cost_usd']:.4f}"
        print(f"  {take['take']:<28} {take['state']:<15} seed {take['seed']}{cost}  {extra}".rstrip())
    if report["clip_problems"]:
        print(
            f"{report['clip_problems']} clips are missing or altered; `previz run` fetches missing ones again"
        )
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from runner.report import as_csv, as_json, as_markdown, load, totals
    from runner.report_html import write_all

    sources = load(Path(p) for p in args.paths)
    report = totals(sources)
    if args.format == "json":
        print(as_json(report))
    elif args.format == "csv":
        print(as_csv(report), end="")
    elif args.format == "md":
        print(as_markdown(report))
    else:
        _print_report_text(report)
    for path in write_all(sources):
        print(f"report: {path}", file=sys.stderr if args.format != "text" else sys.stdout)
    return EXIT_OK


def _print_report_text(report: dict[str, Any]) -> None:
    """One narrow table per grouping: it fits 80 columns (keys wrap, figures never cut)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=min(Console().width, 100))
    total = report["total"]
    console.print(
        f"{len(report['runs'])} runs · {total['takes']} takes, {total['done']} done · "
        f"${total['cost_usd']:.4f} (reported ${total['reported_usd']:.4f}, "
        f"estimated ${total['estimated_usd']:.4f})",
        markup=False,
    )
    for group in ("provider", "model", "shot", "tag", "day", "status"):
        table = Table(title=f"by {group}", title_justify="left")
        table.add_column(group, overflow="fold", ratio=1)
        for name in ("USD", "takes", "done", "mean s", "p90 s"):
            table.add_column(name, justify="right", no_wrap=True)
        for key, f in report[group].items():
            mean, p90 = f["mean_generation_s"], f["p90_generation_s"]
            table.add_row(
                key or "—", f"{f['cost_usd']:.4f}", str(f["takes"]), str(f["done"]),
                "" if mean is None else f"{mean:.1f}", "" if p90 is None else f"{p90:.1f}",
            )  # fmt: skip
        console.print(table)


def _cmd_init(args: argparse.Namespace) -> int:
    from runner.init import MANIFEST, init

    folder = Path(args.dir)
    written = init(folder)
    for path in written:
        print(f"wrote {path}")
    manifest = folder / MANIFEST
    print(f"next: previz validate {manifest} · previz plan {manifest} · previz run {manifest}")
    return EXIT_OK


def _cmd_cancel(args: argparse.Namespace) -> int:
    import os

    import anyio

    from runner.providers.registry import provider_config_from_env
    from runner.status import cancel, resolve_run_dir

    run_dir = resolve_run_dir(Path(args.target))
    configs = {"runway": provider_config_from_env("runway", os.environ)} if _runway_in_flight(run_dir) else {}
    result = anyio.run(cancel, run_dir, configs)
    for label in result.cancelled:
        print(f"cancelled {label} (Runway refunds cancelled tasks)")
    for provider, labels in result.cannot.items():
        print(
            f"{provider} cannot cancel a task: {len(labels)} takes run to their end "
            "(and bill); the next run collects them"
        )
    for error in result.errors:
        print(f"previz: {error}", file=sys.stderr)
    if not (result.cancelled or result.cannot or result.errors):
        print("no task in flight")
    return EXIT_FAILED if result.errors else EXIT_OK


def _runway_in_flight(run_dir: Path) -> bool:
    from runner.journal import Journal
    from runner.status import IN_FLIGHT_STATES

    journal = Journal.open(run_dir, readonly=True)
    try:
        return any(r.provider == "runway" and r.state in IN_FLIGHT_STATES for r in journal.records().values())
    finally:
        journal.close()


class _ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line (DESIGN §1: bad input is one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        noun = "whole number" if kind is int else "number"
        raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _above_zero(text: str) -> float:
    """A finite number above 0: a budget, a time scale."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _time_scale(text: str) -> float:
    """Above 0 (every simulated wait is multiplied by it) and at most MAX_TIME_SCALE."""
    value = _above_zero(text)
    if value > MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIME_SCALE:g} (1 is real time), got {text}")
    return value


def _deadline(text: str) -> str:
    """Not empty: ``--deadline ""`` (an unset shell variable) must not quietly mean no deadline."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            'is empty; give a local time ("06:30") or an ISO datetime, or leave --deadline out'
        )
    return text


def _at_least_one(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _port(text: str) -> int:
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0–65535 (0: any free port), got {text}")
    return value


DESCRIPTION = """\
Overnight batch runner for Runway Gen-4 Turbo image-to-video takes (through AIML API, Runware or
Runway's own API): a YAML manifest of shots in; verified MP4 clips, a cost/seed ledger and a review
page out. Nothing is paid twice; a rerun of the same command picks up where it stopped."""

EPILOG = """\
a night, start to finish:
  previz init night/            a starter manifest with sample images (runs on the simulator)
  previz validate night/previz.yaml
  previz plan night/previz.yaml
  previz run night/previz.yaml  rerun the same command after any stop
  previz report night/outputs/starter

exit codes: 0 all done · 1 takes failed · 2 bad input (nothing sent) · 3 budget/deadline/daily
limit with takes left · 4 another run holds the lock · 130 interrupted (rerun resumes)"""


def _command(
    sub: argparse._SubParsersAction[_ArgParser], name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with a one-line help, a description and an example people can paste."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    p = _ArgParser(
        prog="previz",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-V", "--version", action="version", version=f"previz-runner {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_checks(sub)
    _add_run(sub)
    _add_records(sub)
    _add_simulate(sub)
    return p


def _add_checks(sub: argparse._SubParsersAction[_ArgParser]) -> None:
    v = _command(
        sub,
        "validate",
        "check a manifest offline (schema, images, provider limits)",
        "previz validate night.yaml",
    )
    v.add_argument("manifest", help="the manifest (YAML) to check")
    v.set_defaults(func=_cmd_validate)

    pl = _command(
        sub,
        "plan",
        "every take, its seed, estimated cost and time; a key check",
        "previz plan night.yaml --json",
    )
    pl.add_argument("manifest", help="the manifest (YAML) to plan")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.add_argument("--offline", action="store_true", help="skip the pre-flight (key check, account limits)")
    pl.set_defaults(func=_cmd_plan)

    sc = _command(
        sub, "schema", "JSON Schema of the manifest, for editors", "previz schema > manifest.schema.json"
    )
    sc.set_defaults(func=_cmd_schema)

    it = _command(
        sub,
        "init",
        "write a starter manifest with sample images, ready to run on the simulator",
        "previz init night/",
    )
    it.add_argument("dir", nargs="?", default=".", metavar="DIR", help="folder to write into (default: here)")
    it.set_defaults(func=_cmd_init)


def _add_run(sub: argparse._SubParsersAction[_ArgParser]) -> None:
    r = _command(
        sub,
        "run",
        "run a manifest: submit, poll, download; resumes by itself",
        "previz run night.yaml --budget 40 --deadline 06:30",
    )
    r.add_argument("manifest", help="the manifest (YAML) to run")
    r.add_argument("--simulate", action="store_true", help="use the built-in simulator (no key needed)")
    r.add_argument(
        "--concurrency", type=_at_least_one, help="tasks in flight per provider (default: manifest)"
    )
    r.add_argument("--output", help="output folder, relative to here (default: the manifest's output_dir)")
    r.add_argument(
        "--budget", type=_above_zero, metavar="USD", help="cap on spend, all runs of the manifest together"
    )
    r.add_argument(
        "--deadline",
        type=_deadline,
        metavar="TIME",
        help='no new submissions after this local time ("06:30") or ISO datetime',
    )
    r.add_argument(
        "--retry-failed",
        action="store_true",
        dest="retry_failed",
        help="also retry takes that failed by moderation or bad input, or were cancelled",
    )
    r.add_argument(
        "--hold-uncertain",
        action="store_true",
        dest="hold_uncertain",
        help="leave takes whose submit may have landed unseen (after a crash) for you to check",
    )
    r.add_argument("--json", action="store_true", help="print summary.json on stdout (progress on stderr)")
    r.add_argument(
        "--max-clip-mb",
        type=_above_zero,
        default=1024.0,
        dest="max_clip_mb",
        metavar="MB",
        help="refuse a clip larger than this (default 1024): a CDN that never stops cannot fill the disk",
    )
    r.add_argument(
        "--clock-scale",
        type=float,
        dest="clock_scale",
        metavar="SCALE",
        help="testing: previz's own clock at SCALE× real time, to match `previz simulate --time-scale`"
        " (loopback provider URLs only)",
    )
    r.add_argument(
        "--sim-profile",
        default="clean",
        choices=("clean", "flaky", "hostile"),
        dest="sim_profile",
        help="simulated faults, with --simulate: none, transient ones, or all (default clean)",
    )
    r.add_argument(
        "--sim-time-scale",
        type=_time_scale,
        default=0.05,
        dest="sim_time_scale",
        help="simulator speed, with --simulate: 0.05 (default) makes a 60 s generation last 3 s",
    )
    r.set_defaults(func=_cmd_run)


def _add_records(sub: argparse._SubParsersAction[_ArgParser]) -> None:
    st = _command(
        sub,
        "status",
        "state of every take from the journal; works while a run is going",
        "previz status night.yaml",
    )
    st.add_argument("target", metavar="MANIFEST_OR_RUN_DIR", help="a manifest, or a run directory")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_cmd_status)

    rp = _command(
        sub,
        "report",
        "cost/seed report over run directories or ledgers; writes report.html",
        "previz report outputs/night outputs/night-retry --format md",
    )
    rp.add_argument(
        "paths", nargs="+", metavar="PATH", help="run directories or ledger.jsonl/ledger.csv files"
    )
    rp.add_argument(
        "--format", choices=("text", "csv", "json", "md"), default="text", help="output format (default text)"
    )
    rp.set_defaults(func=_cmd_report)

    ca = _command(
        sub,
        "cancel",
        "cancel the tasks still in flight where the provider allows (Runway)",
        "previz cancel night.yaml",
    )
    ca.add_argument("target", metavar="MANIFEST_OR_RUN_DIR", help="a manifest, or a run directory")
    ca.set_defaults(func=_cmd_cancel)


def _add_simulate(sub: argparse._SubParsersAction[_ArgParser]) -> None:
    sim = _command(
        sub,
        "simulate",
        "run the built-in provider simulator as a server",
        "previz simulate --profile flaky --time-scale 0.1",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks a free one)")
    sim.add_argument(
        "--profile",
        default="clean",
        choices=("clean", "flaky", "hostile"),
        help="faults: none, transient ones, or all (default clean)",
    )
    sim.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        dest="time_scale",
        help="1.0 is real time; 0.1 makes a 60 s generation last 6 s",
    )
    sim.add_argument(
        "--seed", type=int, default=0, help="seed of the faults and timings (same seed, same night)"
    )
    sim.add_argument(
        "--key",
        action="append",
        metavar="NAME=VALUE",
        help="key the simulator accepts, e.g. RUNWAYML_API_SECRET=my-test-key (repeatable)",
    )
    sim.add_argument(
        "--set",
        action="append",
        default=[],
        dest="knobs",
        metavar="KNOB=N",
        help="a simulator knob (see runner/simulator/README.md), e.g. gen_min_s=40; repeatable",
    )
    sim.set_defaults(func=_cmd_simulate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every exit path returns a code (DESIGN §1), none prints a traceback."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # a closed pipe must fail here, inside the guard, not at interpreter exit
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK  # the reader stopped reading (`previz schema | head`): not our failure
    return code


def _quiet_stdout() -> None:
    """Point stdout at the null device so Python's final flush does not complain on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # in-process callers (tests) give a stdout without a descriptor
        pass


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help; keep main() returning codes
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LockHeldError as exc:
        print(f"previz: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_LOCKED
    except ManifestError as exc:
        for problem in exc.problems:
            print(one_line(str(problem)), file=sys.stderr)
        return EXIT_INPUT
    except InputError as exc:
        print(f"previz: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except PrevizError as exc:
        print(f"previz: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("previz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
