"""``previz run``: its arguments, the run itself (see :mod:`runner.cli.run`), and its exit code."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from runner.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    ArgParser,
    above_zero,
    at_least_one,
    command,
    deadline,
    time_scale,
)
from runner.engine.diskcap import DEFAULT_MAX_RUN_GB
from runner.store.owner import LEASE_S, OUTAGE_S

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from runner.engine.tally import Summary


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    r = command(
        sub,
        "run",
        "run a manifest: submit, poll, download; resumes by itself",
        "previz run night.yaml --budget 40 --deadline 06:30",
    )
    r.add_argument("manifest", help="the manifest (YAML) to run")
    r.add_argument("--simulate", action="store_true", help="use the built-in simulator (no key needed)")
    r.add_argument(
        "--concurrency", type=at_least_one, help="tasks in flight per provider (default: manifest)"
    )
    r.add_argument("--output", help="output folder, relative to here (default: the manifest's output_dir)")
    r.add_argument(
        "--budget", type=above_zero, metavar="USD", help="cap on spend, all runs of the manifest together"
    )
    r.add_argument(
        "--deadline",
        type=deadline,
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
        type=above_zero,
        default=1024.0,
        dest="max_clip_mb",
        metavar="MB",
        help="refuse a clip larger than this (default 1024): a CDN that never stops cannot fill the disk",
    )
    r.add_argument(
        "--store",
        metavar="URL",
        help="team mode: a postgresql:// store the runs of every machine share (also PREVIZ_STORE); "
        "default: the run directory's journal.sqlite",
    )
    r.add_argument(
        "--lease-seconds",
        type=above_zero,
        default=LEASE_S,
        dest="lease_s",
        metavar="S",
        help=f"team mode: a dead run's takes go to another run after this long (default {LEASE_S:g})",
    )
    r.add_argument(
        "--store-outage-seconds",
        type=above_zero,
        default=OUTAGE_S,
        dest="store_outage_s",
        metavar="S",
        help="team mode: how long the store may be away (restarting, off the network) before the run "
        f"stops, exit 1 (default {OUTAGE_S:g}); meanwhile polls and downloads go on",
    )
    r.add_argument(
        "--max-run-gb",
        type=above_zero,
        default=DEFAULT_MAX_RUN_GB,
        dest="max_run_gb",
        metavar="GB",
        help=f"cap on all of this run's downloads together (default {DEFAULT_MAX_RUN_GB:g}); "
        "past it, no new submissions",
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
        type=time_scale,
        default=0.05,
        dest="sim_time_scale",
        help="simulator speed, with --simulate: 0.05 (default) makes a 60 s generation last 3 s",
    )
    r.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import anyio
    from rich.console import Console

    from runner.cli.progress import Progress
    from runner.cli.run import RunOptions, execute, prepare
    from runner.cli.terminal import TerminalWatch, standard
    from runner.clock import REAL_TIME, ScaledClock

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
        max_run_gb=args.max_run_gb,
        store=args.store,
        lease_s=args.lease_s,
        store_outage_s=args.store_outage_s,
        clock=ScaledClock(args.clock_scale) if args.clock_scale else REAL_TIME,
    )
    prepared = prepare(options)
    terminal = TerminalWatch()  # a closed SSH session drains the run instead of crashing it
    # --json: stdout carries the summary only, so the console writes to stderr
    console = Console(file=standard(terminal, stderr=args.json), highlight=False)
    mode = "simulator (no key needed)" if prepared.simulate else "live providers"
    console.print(f"previz run {prepared.manifest.name}: {len(prepared.takes)} takes on {mode}", markup=False)
    console.print(f"run directory: {prepared.run_dir}", markup=False)
    shots: dict[str, int] = {}
    for take in prepared.takes:
        shots[take.shot] = shots.get(take.shot, 0) + 1
    progress = Progress(console, shots=shots)
    with progress.live():
        summary = anyio.run(partial(execute, prepared, progress, terminal=terminal))
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
    from runner.engine.gate import StopReason

    if summary.failed_earlier:
        console.print(
            f"{summary.failed_earlier} takes failed in earlier runs and were not retried; "
            "--retry-failed tries them again",
            markup=False,
        )
    if summary.failed_elsewhere:
        console.print(
            f"{summary.failed_elsewhere} take{'' if summary.failed_elsewhere == 1 else 's'} of this manifest"
            " failed in other runs on the store "
            "(previz status --store shows them)",
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
        ("failed in other runs", summary.failed_elsewhere),
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
