"""The commands that read a night's records: ``status``, ``report`` and ``cancel``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runner.cli.common import EXIT_FAILED, EXIT_OK, ArgParser, command


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    st = command(
        sub,
        "status",
        "state of every take from the journal; works while a run is going",
        "previz status night.yaml",
    )
    st.add_argument("target", metavar="MANIFEST_OR_RUN_DIR", help="a manifest, or a run directory")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_cmd_status)

    rp = command(
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

    ca = command(
        sub,
        "cancel",
        "cancel the tasks still in flight where the provider allows (Runway)",
        "previz cancel night.yaml",
    )
    ca.add_argument("target", metavar="MANIFEST_OR_RUN_DIR", help="a manifest, or a run directory")
    ca.set_defaults(func=_cmd_cancel)


def _cmd_status(args: argparse.Namespace) -> int:
    from runner.reports.status import resolve_run_dir, status

    report = status(resolve_run_dir(Path(args.target)))
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return EXIT_OK
    print(f"run directory: {report['run_dir']}")
    print("a run is going: " + report["holder"] if report["running"] else "no run is going")
    print("takes: " + ", ".join(f"{n} {state}" for state, n in report["counts"].items()))
    print(f"spent: {report['spent_usd']:.4f} USD; held for takes in flight: {report['reserved_usd']:.4f} USD")
    chosen = {s["key"] for s in report["selects"].values()}
    if chosen:
        print("selects (*): " + ", ".join(f"{shot}:{s['take']}" for shot, s in report["selects"].items()))
    for take in report["takes"]:
        circled = "* " if take["key"] in chosen else "  "
        extra = "; ".join(x for x in (take["failure"], take["clip"] and f"clip {take['clip']}") if x)
        cost = "" if take["cost_usd"] is None else f" ${take['cost_usd']:.4f}"
        print(f"{circled}{take['take']:<28} {take['state']:<15} seed {take['seed']}{cost}  {extra}".rstrip())
    if report["clip_problems"]:
        print(
            f"{report['clip_problems']} clips are missing or altered; `previz run` fetches missing ones again"
        )
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from runner.reports.html import write_all
    from runner.reports.origin import maybe_manifest
    from runner.reports.report import as_csv, as_json, as_markdown, load, totals

    sources = load(Path(p) for p in args.paths)
    for source in sources:
        if source.skipped:
            print(
                f"previz: {source.run_dir}: {source.skipped} ledger lines skipped (not rows previz writes)",
                file=sys.stderr,
            )
    report = totals(sources)
    if args.format == "json":
        print(as_json(report))
    elif args.format == "csv":
        print(as_csv(report), end="")
    elif args.format == "md":
        print(as_markdown(report))
    else:
        _print_report_text(report)
    for path in write_all(sources, [maybe_manifest(s.run_dir) for s in sources]):
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


def _cmd_cancel(args: argparse.Namespace) -> int:
    import os

    import anyio

    from runner.providers.registry import provider_config_from_env
    from runner.reports.status import cancel, resolve_run_dir

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
    from runner.reports.status import IN_FLIGHT_STATES
    from runner.store.factory import open_store

    journal = open_store(run_dir, readonly=True)
    try:
        return any(r.provider == "runway" and r.state in IN_FLIGHT_STATES for r in journal.records().values())
    finally:
        journal.close()
