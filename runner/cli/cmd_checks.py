"""The offline commands and the starter: ``validate``, ``plan``, ``schema``, ``init``.

Nothing here spends money: ``plan``'s pre-flight proves keys with requests that bill nothing, and
is skipped per provider without a key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runner.cli.common import EXIT_INPUT, EXIT_OK, ArgParser, command, one_line
from runner.errors import ManifestError

if TYPE_CHECKING:
    from runner.cli.preflight import PreflightReport
    from runner.manifest.document import Manifest


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    v = command(
        sub,
        "validate",
        "check a manifest offline (schema, images, provider limits)",
        "previz validate night.yaml",
    )
    v.add_argument("manifest", help="the manifest (YAML) to check")
    v.set_defaults(func=_cmd_validate)

    pl = command(
        sub,
        "plan",
        "every take, its seed, estimated cost and time; a key check",
        "previz plan night.yaml --json",
    )
    pl.add_argument("manifest", help="the manifest (YAML) to plan")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.add_argument("--offline", action="store_true", help="skip the pre-flight (key check, account limits)")
    pl.set_defaults(func=_cmd_plan)

    sc = command(
        sub, "schema", "JSON Schema of the manifest, for editors", "previz schema > manifest.schema.json"
    )
    sc.set_defaults(func=_cmd_schema)

    it = command(
        sub,
        "init",
        "write a starter manifest with sample images, ready to run on the simulator",
        "previz init night/",
    )
    it.add_argument("dir", nargs="?", default=".", metavar="DIR", help="folder to write into (default: here)")
    it.set_defaults(func=_cmd_init)


def _cmd_validate(args: argparse.Namespace) -> int:
    from runner.manifest.document import load_manifest

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
    from runner.cli.preflight import render_preflight
    from runner.manifest.document import load_manifest
    from runner.manifest.plan import build_plan, render_plan_text

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

    from runner.cli.preflight import check_manifest
    from runner.errors import ConfigError

    todo = [t for t in manifest.takes() if t.key not in done]
    try:
        return asyncio.run(check_manifest(manifest, todo))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (previz plan --offline skips the key check)") from exc


def _history(manifest: Manifest) -> tuple[set[str], float]:
    """Keys already done and USD spent in this manifest's run directory (none before the first run)."""
    from runner.store.factory import open_store
    from runner.store.sqlite import FILENAME

    if not (manifest.run_dir / FILENAME).exists():
        return set(), 0.0
    journal = open_store(manifest.run_dir, readonly=True)
    try:
        done = {k for k, r in journal.records().items() if r.state == "done"}
        return done, journal.money().spent_usd
    finally:
        journal.close()


def _cmd_schema(args: argparse.Namespace) -> int:
    from runner.manifest.document import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _cmd_init(args: argparse.Namespace) -> int:
    from runner.cli.init import MANIFEST, init

    folder = Path(args.dir)
    written = init(folder)
    for path in written:
        print(f"wrote {path}")
    manifest = folder / MANIFEST
    print(f"next: previz validate {manifest} · previz plan {manifest} · previz run {manifest}")
    return EXIT_OK
