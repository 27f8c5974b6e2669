"""What every command shares: exit codes, one-line messages, and argparse's types and parser.

Exit codes (DESIGN §1): 0 every take done · 1 some takes failed · 2 bad input, nothing submitted ·
3 stopped by budget or deadline with takes left · 4 lock held · 130 interrupted (state saved).
"""

from __future__ import annotations

import argparse
import math
import unicodedata
from collections.abc import Callable
from typing import NoReturn

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


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line (DESIGN §1: bad input is one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def command(
    sub: argparse._SubParsersAction[ArgParser], name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with a one-line help, a description and an example people can paste."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        noun = "whole number" if kind is int else "number"
        raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def above_zero(text: str) -> float:
    """A finite number above 0: a budget, a time scale."""
    value = number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def time_scale(text: str) -> float:
    """Above 0 (every simulated wait is multiplied by it) and at most MAX_TIME_SCALE."""
    value = above_zero(text)
    if value > MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIME_SCALE:g} (1 is real time), got {text}")
    return value


def deadline(text: str) -> str:
    """Not empty: ``--deadline ""`` (an unset shell variable) must not quietly mean no deadline."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            'is empty; give a local time ("06:30") or an ISO datetime, or leave --deadline out'
        )
    return text


def at_least_one(text: str) -> int:
    value = int(number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def port(text: str) -> int:
    value = int(number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0–65535 (0: any free port), got {text}")
    return value
