"""The morning's commands (DESIGN §8): `select` the takes to keep, `export` them, `reroll` shots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli.common import EXIT_OK, ArgParser, at_least_one, command, one_line


def add(sub: argparse._SubParsersAction[ArgParser]) -> None:
    se = command(
        sub,
        "select",
        "record the chosen take of shots (selects) in the journal; without takes, list them",
        "previz select outputs/demo harbor-dawn:2 glasshouse:1",
    )
    se.add_argument("target", metavar="RUN_DIR", help="a run directory (or the manifest that makes it)")
    se.add_argument("items", nargs="*", metavar="SHOT:TAKE", help="a take by shot id and take number")
    se.add_argument("--from", dest="from_file", metavar="FILE", help="a selects file (report.html saves one)")
    se.add_argument(
        "--clear",
        nargs="*",
        metavar="SHOT:TAKE",
        help="forget these selects (every select when none is given)",
    )
    se.add_argument("--who", type=_who, help="who chose (default: the login name)")
    se.set_defaults(func=_cmd_select)

    ex = command(
        sub,
        "export",
        "an editorial timeline of the selects through OpenTimelineIO (and a CMX 3600 EDL)",
        "previz export outputs/demo --otio outputs/demo/selects.otio --edl outputs/demo/selects.edl",
    )
    ex.add_argument("target", metavar="RUN_DIR", help="a run directory (or the manifest that makes it)")
    ex.add_argument("--otio", required=True, metavar="FILE", help="the timeline to write (.otio)")
    ex.add_argument("--edl", metavar="FILE", help="also a CMX 3600 EDL of the same timeline")
    ex.add_argument("--all", dest="every_take", action="store_true", help="every done take, not the selects")
    ex.add_argument("--gaps", action="store_true", help="a gap of its duration for a shot with no clip")
    ex.add_argument("--manifest", metavar="FILE", help="the run's manifest, when the run cannot name it")
    ex.set_defaults(func=_cmd_export)

    rr = command(
        sub,
        "reroll",
        "a manifest of N new takes (new seeds, same settings) of shots, beside the run",
        "previz reroll outputs/demo harbor-dawn --takes 4",
    )
    rr.add_argument("target", metavar="RUN_DIR", help="a run directory (or the manifest that makes it)")
    rr.add_argument("shots", nargs="+", metavar="SHOT", help="a shot id")
    rr.add_argument("--takes", type=at_least_one, required=True, metavar="N", help="new takes per shot")
    rr.add_argument("--manifest", metavar="FILE", help="the run's manifest, when the run cannot name it")
    rr.set_defaults(func=_cmd_reroll)


def _who(text: str) -> str:
    """A name for the journal: 1–64 characters, no control characters."""
    from runner.textcheck import first_control

    if not text.strip() or len(text) > 64 or first_control(text) is not None:
        raise argparse.ArgumentTypeError("must be 1–64 characters without control characters")
    return text


def _cmd_select(args: argparse.Namespace) -> int:
    from runner.reports import selects
    from runner.reports.origin import read_takes
    from runner.reports.status import resolve_run_dir

    run_dir = resolve_run_dir(Path(args.target))
    picks = [selects.parse_arg(item) for item in [*args.items, *(args.clear or ())]]
    if args.from_file:
        picks += selects.parse_file(Path(args.from_file))
    if args.clear is not None:
        gone = selects.clear(run_dir, picks)
        print(f"forgot {gone} select{'' if gone == 1 else 's'}")
    elif picks:
        done = selects.record(run_dir, picks, args.who)
        for record in done.chosen:
            print(f"selected {record.label} (seed {record.spec.get('seed')}) — {done.who}, {done.at}")
        for record in done.replaced:
            print(f"  no longer selected: {record.label}")
    else:
        print(selects.as_text(read_takes(run_dir), title=str(run_dir)), end="")
        return EXIT_OK
    _refresh(run_dir)
    return EXIT_OK


def _refresh(run_dir: Path) -> None:
    """summary.json's selects and report.html, as the journal now has them (a warning if they cannot be)."""
    from runner.reports.html import write_report_html
    from runner.reports.origin import maybe_manifest
    from runner.reports.report import load
    from runner.reports.summary import update_selects
    from runner.store.factory import open_store

    try:
        journal = open_store(run_dir, readonly=True)
        try:
            update_selects(run_dir, journal)
        finally:
            journal.close()
        if (run_dir / "ledger.jsonl").exists() or (run_dir / "ledger.csv").exists():
            manifest = maybe_manifest(run_dir)
            (source,) = load([run_dir])
            budget = manifest.budget_usd if manifest else None
            path = write_report_html(source, name=run_dir.name, budget_usd=budget, manifest=manifest)
            print(f"report: {path}")
    except OSError as exc:
        print(f"previz: warning: cannot update the run's files ({exc.strerror or exc})", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> int:
    from runner.reports.origin import find_manifest
    from runner.reports.otio_export import export
    from runner.reports.status import resolve_run_dir

    run_dir = resolve_run_dir(Path(args.target))
    manifest = find_manifest(run_dir, Path(args.manifest) if args.manifest else None)
    done = export(
        run_dir,
        manifest,
        Path(args.otio),
        edl_path=Path(args.edl) if args.edl else None,
        every_take=args.every_take,
        gaps=args.gaps,
    )
    for warning in done.warnings:
        print(f"previz: warning: {one_line(warning)}", file=sys.stderr)
    media = "paths relative to it (it is inside the run directory)" if done.relative else "absolute file URLs"
    print(f"timeline: {done.otio} ({done.clips} clips, {done.gaps} gaps; media: {media})")
    if done.edl is not None:
        print(f"edl: {done.edl}")
    return EXIT_OK


def _cmd_reroll(args: argparse.Namespace) -> int:
    from runner.reports.origin import find_manifest
    from runner.reports.reroll import write_reroll
    from runner.reports.status import resolve_run_dir

    run_dir = resolve_run_dir(Path(args.target))
    manifest = find_manifest(run_dir, Path(args.manifest) if args.manifest else None)
    done = write_reroll(run_dir, manifest, args.shots, args.takes)
    for shot, seeds in done.seeds.items():
        print(f"{shot}: {len(seeds)} new takes, seeds {', '.join(map(str, seeds))}")
    print(f"round {done.round}, runs as {done.name}: previz run {done.path}")
    return EXIT_OK
