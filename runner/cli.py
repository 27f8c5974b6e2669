"""Command line: argv → options → one call into the library. The only module that prints.

Exit codes (DESIGN §1): 0 every take done · 1 some takes failed · 2 bad input, nothing submitted ·
3 stopped by budget or deadline with takes left · 4 lock held · 130 interrupted (state saved).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner import __version__
from runner.errors import ConfigError, InputError, LockHeldError, PrevizError

if TYPE_CHECKING:
    from rich.table import Table

    from runner.engine import Summary
    from runner.manifest import Manifest

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_STOPPED = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130


def _cmd_validate(args: argparse.Namespace) -> int:
    from runner.errors import ManifestError
    from runner.manifest import load_manifest

    try:
        manifest = load_manifest(Path(args.manifest))
    except ManifestError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{args.manifest}: {count} problem{'' if count == 1 else 's'}", file=sys.stderr)
        return EXIT_INPUT
    print(f"{args.manifest}: ok — {len(manifest.shots)} shots, {manifest.take_count()} takes")
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from runner.manifest import load_manifest
    from runner.plan import build_plan, render_plan_text

    manifest = load_manifest(Path(args.manifest))
    plan = build_plan(manifest, done_keys=_done_keys(manifest))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(render_plan_text(plan))
    return EXIT_OK


def _done_keys(manifest: Manifest) -> set[str]:
    """Keys of takes already done in this manifest's run directory (empty before the first run)."""
    from runner.ledger import History

    return History.load(manifest.run_dir).done_keys()


def _cmd_schema(args: argparse.Namespace) -> int:
    from runner.manifest import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from runner.simulator import SimConfig, serve

    knobs = dict(_knob(text) for text in args.knobs)
    try:
        config = SimConfig.from_profile(args.profile, time_scale=args.time_scale, seed=args.seed, **knobs)
    except ValueError as exc:
        raise ConfigError(f"simulate: {exc}") from None

    def ready(base_url: str) -> None:
        print(f"previz simulator ({args.profile}, time scale {args.time_scale}) on {base_url}")
        for var in ("AIMLAPI_BASE_URL", "RUNWARE_BASE_URL", "RUNWAYML_BASE_URL"):
            print(f"  export {var}={base_url}")
        print(f"  stats: {base_url}/_sim/stats — Ctrl-C stops")
        sys.stdout.flush()

    serve(config, host=args.host, port=args.port, on_ready=ready)
    return EXIT_OK


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
    from runner.gate import StopReason
    from runner.progress import Progress

    options = RunOptions(
        manifest=Path(args.manifest),
        simulate=args.simulate,
        concurrency=args.concurrency,
        output=Path(args.output) if args.output else None,
        retry_failed=args.retry_failed,
        budget_usd=args.budget,
        deadline=args.deadline,
        sim_profile=args.sim_profile,
        sim_time_scale=args.sim_time_scale,
    )
    prepared = prepare(options)
    console = Console(highlight=False)
    mode = "simulator (no key needed)" if prepared.simulate else "live providers"
    console.print(f"previz run {prepared.manifest.name}: {len(prepared.takes)} takes on {mode}", markup=False)
    console.print(f"run directory: {prepared.run_dir}", markup=False)
    progress = Progress(console)
    with progress.live():
        summary = anyio.run(execute, prepared, progress)
    console.print(render_summary(summary, prepared.run_dir))
    if summary.stopped is StopReason.INTERRUPTED:
        console.print("interrupted: takes that finished are recorded; run the same command again to go on")
        return EXIT_INTERRUPTED
    if summary.stopped in (StopReason.BUDGET, StopReason.DEADLINE) and summary.not_started:
        console.print(f"stopped by the {summary.stopped}: {summary.not_started} takes left for a later run")
        return EXIT_STOPPED
    return EXIT_OK if summary.ok else EXIT_FAILED


def render_summary(summary: Summary, run_dir: Path) -> Table:
    from rich.table import Table

    table = Table(title="summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("done", summary.done),
        ("failed", summary.failed),
        ("cancelled", summary.cancelled),
        ("skipped (earlier runs)", summary.skipped),
        ("not started", summary.not_started),
        ("spent (USD)", f"{summary.spent_usd:.4f}"),
        ("ledger", run_dir / "ledger.csv"),
    ]
    for what, value in rows:
        table.add_row(what, str(value))
    return table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="previz", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"previz-runner {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a manifest offline (schema, images, provider limits)")
    v.add_argument("manifest")
    v.set_defaults(func=_cmd_validate)

    pl = sub.add_parser("plan", help="expanded take list, estimated cost and time")
    pl.add_argument("manifest")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(func=_cmd_plan)

    sc = sub.add_parser("schema", help="JSON Schema of the manifest, for editors")
    sc.set_defaults(func=_cmd_schema)

    r = sub.add_parser("run", help="run a manifest: submit, poll, download; resumes by itself")
    r.add_argument("manifest")
    r.add_argument("--simulate", action="store_true", help="use the built-in simulator (no key needed)")
    r.add_argument("--concurrency", type=int, help="tasks in flight per provider (default: manifest)")
    r.add_argument("--output", help="output directory (default: manifest output_dir, else ./outputs)")
    r.add_argument(
        "--budget", type=float, metavar="USD", help="cap on spend, all runs of the manifest together"
    )
    r.add_argument(
        "--deadline",
        metavar="TIME",
        help='no new submissions after this local time ("06:30") or ISO datetime',
    )
    r.add_argument(
        "--retry-failed", action="store_true", dest="retry_failed", help="retry moderation/input failures"
    )
    r.add_argument(
        "--sim-profile", default="clean", choices=("clean", "flaky", "hostile"), dest="sim_profile"
    )
    r.add_argument(
        "--sim-time-scale",
        type=float,
        default=0.05,
        dest="sim_time_scale",
        help="simulator speed: 0.05 makes a 60 s generation last 3 s",
    )
    r.set_defaults(func=_cmd_run)

    sim = sub.add_parser("simulate", help="run the built-in provider simulator as a server")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--profile", default="clean", choices=("clean", "flaky", "hostile"))
    sim.add_argument("--time-scale", type=float, default=1.0, dest="time_scale")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--set",
        action="append",
        default=[],
        dest="knobs",
        metavar="KNOB=N",
        help="simulator knob, repeatable",
    )
    sim.set_defaults(func=_cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help; keep main() returning codes
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LockHeldError as exc:
        print(f"previz: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except InputError as exc:
        print(f"previz: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return EXIT_INPUT
    except PrevizError as exc:
        print(f"previz: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("previz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
