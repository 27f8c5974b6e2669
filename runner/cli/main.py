"""Command line: argv → one command → an exit code. The only place that prints errors.

Each group of commands lives in its own module (``cmd_*.py``) with its arguments; this module
builds the parser from them and turns every error of the exception tree into one line and its
exit code (DESIGN §1; the codes are in :mod:`runner.cli.common`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from runner import __version__
from runner.cli import cmd_accounts, cmd_checks, cmd_morning, cmd_records, cmd_run, cmd_simulate
from runner.cli.common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    ArgParser,
    one_line,
)
from runner.errors import InputError, LockHeldError, ManifestError, PrevizError

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
the morning:
  previz select night/outputs/starter harbor:2      or --from the file report.html saves
  previz export night/outputs/starter --otio night/outputs/starter/selects.otio
  previz reroll night/outputs/starter harbor --takes 4

exit codes: 0 all done · 1 takes failed · 2 bad input (nothing sent) · 3 budget/deadline/daily
limit with takes left · 4 another run holds the lock · 130 interrupted (rerun resumes)"""


def _parser() -> argparse.ArgumentParser:
    p = ArgParser(
        prog="previz",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-V", "--version", action="version", version=f"previz-runner {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (cmd_checks, cmd_run, cmd_records, cmd_morning, cmd_accounts, cmd_simulate):
        group.add(sub)

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
