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

from runner import __version__
from runner.errors import InputError, LockHeldError, PrevizError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_STOPPED = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130


def _cmd_validate(args: argparse.Namespace) -> int:
    from runner.manifest import load_manifest

    manifest = load_manifest(Path(args.manifest))
    takes = list(manifest.takes())
    print(f"{args.manifest}: ok — {len(manifest.shots)} shots, {len(takes)} takes")
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


def _done_keys(manifest: object) -> set[str]:
    """Keys of takes already finished in this manifest's run directory (none until a run exists)."""
    try:
        from runner.record import done_keys_for
    except ImportError:
        return set()
    return done_keys_for(manifest)


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

    sim = sub.add_parser("simulate", help="run the built-in provider simulator as a server")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--profile", default="clean", choices=("clean", "flaky", "hostile"))
    sim.add_argument("--time-scale", type=float, default=1.0, dest="time_scale")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=_cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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
