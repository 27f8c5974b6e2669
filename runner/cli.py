"""Command line: argv → options → one call into the library. The only module that prints.

Exit codes (DESIGN §1): 0 every take done · 1 some takes failed · 2 bad input, nothing submitted ·
3 stopped by budget or deadline with takes left · 4 lock held · 130 interrupted (state saved).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from runner import __version__
from runner.errors import InputError, LockHeldError, ManifestError, PrevizError

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

    config = SimConfig.from_profile(args.profile, time_scale=args.time_scale, seed=args.seed)

    def ready(base_url: str) -> None:
        print(f"previz simulator ({args.profile}, time scale {args.time_scale}) on {base_url}")
        for var in ("AIMLAPI_BASE_URL", "RUNWARE_BASE_URL", "RUNWAYML_BASE_URL"):
            print(f"  export {var}={base_url}")
        print(f"  stats: {base_url}/_sim/stats — Ctrl-C stops")
        sys.stdout.flush()

    serve(config, host=args.host, port=args.port, on_ready=ready)
    return EXIT_OK


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


def _parser() -> argparse.ArgumentParser:
    p = _ArgParser(prog="previz", description=__doc__.splitlines()[0] if __doc__ else None)
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
    r.add_argument(
        "--concurrency", type=_at_least_one, help="tasks in flight per provider (default: manifest)"
    )
    r.add_argument("--output", help="output directory (default: manifest output_dir, else ./outputs)")
    r.add_argument(
        "--budget", type=_above_zero, metavar="USD", help="cap on spend, all runs of the manifest together"
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
        type=_time_scale,
        default=0.05,
        dest="sim_time_scale",
        help="simulator speed: 0.05 makes a 60 s generation last 3 s",
    )
    r.set_defaults(func=_cmd_run)

    sim = sub.add_parser("simulate", help="run the built-in provider simulator as a server")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_port, default=8765)
    sim.add_argument("--profile", default="clean", choices=("clean", "flaky", "hostile"))
    sim.add_argument("--time-scale", type=_time_scale, default=1.0, dest="time_scale")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=_cmd_simulate)
    return p


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
