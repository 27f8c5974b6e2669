"""The commands that read a night's records: ``status``, ``report`` and ``cancel``.

Each takes ``--store URL`` (or ``PREVIZ_STORE``), team mode's shared store (DESIGN §7):
``status``/``cancel`` with a target read that manifest's takes there; ``status`` without one and
``report`` without paths give the studio-wide view (every manifest, every machine). ``report``
with paths reads those ledgers, whatever ``PREVIZ_STORE`` says; paths and ``--store`` together
are refused (two different bills).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.cli.common import EXIT_FAILED, EXIT_OK, ArgParser, command
from runner.errors import ConfigError

_STORE_HELP = "the team's postgresql:// store (also PREVIZ_STORE)"


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    st = command(
        sub,
        "status",
        "state of every take from the journal; works while a run is going",
        "previz status night.yaml      or, the whole studio: previz status --store postgresql://…",
    )
    st.add_argument(
        "target",
        nargs="?",
        metavar="MANIFEST_OR_RUN_DIR",
        help="a manifest, or a run directory; left out with --store: every manifest on the store",
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--store", metavar="URL", help=_STORE_HELP)
    st.set_defaults(func=_cmd_status)

    rp = command(
        sub,
        "report",
        "cost/seed report over run directories or ledgers; writes report.html",
        "previz report outputs/night outputs/night-retry --format md",
    )
    rp.add_argument(
        "paths", nargs="*", metavar="PATH", help="run directories or ledger.jsonl/ledger.csv files"
    )
    rp.add_argument(
        "--store",
        metavar="URL",
        help="instead of paths: the studio's bill from the team's store (also PREVIZ_STORE)",
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
    ca.add_argument("--store", metavar="URL", help=_STORE_HELP)
    ca.set_defaults(func=_cmd_cancel)


def _store(given: str | None) -> str | None:
    """``--store``, else ``PREVIZ_STORE``, else None; refused unless postgresql:// (exit 2)."""
    from runner.store.factory import POSTGRES
    from runner.store.storeurl import shown

    url = given if given is not None else os.environ.get("PREVIZ_STORE")
    if not url:
        return None
    if not url.startswith(POSTGRES):
        raise ConfigError(f"--store / PREVIZ_STORE: {shown(url)} is not a postgresql:// URL")
    return url


def _cmd_status(args: argparse.Namespace) -> int:
    from runner.reports.status import resolve_target, status

    url = _store(args.store)
    if args.target is None:
        return _studio_status(url, as_json=args.json)
    run_dir, scope = resolve_target(Path(args.target), url)
    report = status(run_dir, url=url, scope=scope)
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


def _studio_status(url: str | None, *, as_json: bool) -> int:
    if url is None:
        raise ConfigError("status needs MANIFEST_OR_RUN_DIR, or --store URL (or PREVIZ_STORE) for the studio")
    from runner.reports.studio import view, view_lines

    found = view(url)
    if as_json:
        print(json.dumps(found, indent=2, allow_nan=False))
    else:
        print("\n".join(view_lines(found)))
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    if args.paths and args.store is not None:
        raise ConfigError("report: give run directories or ledgers, or --store URL, not both")
    if not args.paths:
        url = _store(args.store)
        if url is None:
            raise ConfigError(
                "report needs PATH… (run directories or ledgers), or --store URL (or PREVIZ_STORE)"
            )
        return _studio_report(url, args.format)
    from runner.reports.html import write_all
    from runner.reports.origin import maybe_manifest
    from runner.reports.report import load, totals

    sources = load(Path(p) for p in args.paths)
    for source in sources:
        if source.skipped:
            print(
                f"previz: {source.run_dir}: {source.skipped} ledger lines skipped (not rows previz writes)",
                file=sys.stderr,
            )
    _print_report(totals(sources), args.format)
    for path in write_all(sources, [maybe_manifest(s.run_dir) for s in sources]):
        print(f"report: {path}", file=sys.stderr if args.format != "text" else sys.stdout)
    return EXIT_OK


def _studio_report(url: str, form: str) -> int:
    """The studio's bill: every ledger row on the store (no run directory, so no report.html)."""
    from runner.reports.report import STUDIO_GROUPS
    from runner.reports.studio import bill

    report = bill(url)
    if form == "text":
        print(f"store {report['store']}", flush=True)
    _print_report(report, form, STUDIO_GROUPS)
    return EXIT_OK


def _print_report(report: dict[str, Any], form: str, groups: Sequence[str] | None = None) -> None:
    from runner.reports.report import GROUPS, as_csv, as_json, as_markdown

    groups = GROUPS if groups is None else groups
    if form == "json":
        print(as_json(report))
    elif form == "csv":
        print(as_csv(report, groups), end="")
    elif form == "md":
        print(as_markdown(report, groups))
    else:
        _print_report_text(report, groups)


def _print_report_text(report: dict[str, Any], groups: Sequence[str]) -> None:
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
    for group in groups:
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
    import anyio

    from runner.providers.registry import provider_config_from_env
    from runner.reports.status import cancel, resolve_target

    url = _store(args.store)
    run_dir, scope = resolve_target(Path(args.target), url)
    runway = _runway_in_flight(run_dir, url, scope)
    configs = {"runway": provider_config_from_env("runway", os.environ)} if runway else {}
    result = anyio.run(lambda: cancel(run_dir, configs, url=url, scope=scope))
    for label in result.cancelled:
        print(f"cancelled {label} (Runway refunds cancelled tasks)")
    for provider, labels in result.cannot.items():
        print(
            f"{provider} cannot cancel a task: {len(labels)} takes run to their end "
            "(and bill); the next run collects them"
        )
    if result.held:
        print(
            f"{len(result.held)} takes are held by a live run on the store (leased): left to it;"
            " `previz status --store` shows which machine — stop that run, then cancel again"
        )
    for error in result.errors:
        print(f"previz: {error}", file=sys.stderr)
    if not (result.cancelled or result.cannot or result.errors or result.held):
        print("no task in flight")
    return EXIT_FAILED if result.errors else EXIT_OK


def _runway_in_flight(run_dir: Path, url: str | None, scope: str) -> bool:
    from runner.reports.status import in_flight
    from runner.store.factory import open_store

    journal = open_store(run_dir, url=url, scope=scope, readonly=True)
    try:
        return any(r.provider == "runway" for r in in_flight(journal))
    finally:
        journal.close()
