"""Selects: the takes an artist circled, given as ``SHOT:TAKE`` or as a file of them, checked and recorded.

A selects file is what ``report.html``'s "download selects" button saves: one ``SHOT:TAKE`` a line
(``harbor-dawn:2``), blank lines and ``#`` comments allowed. Everything given is checked against the
journal before anything is written: a garbled line, a shot the run does not have, a take number it
does not have, a take that is not done, or two takes of one shot is bad input — exit 2, one line
naming the file and line (or the argument) and the item, and the journal untouched.

One select per shot: a shot's select is the take that goes to editorial (``previz export`` lays one
clip per shot), so selecting another take of a shot replaces the earlier one, in one transaction.
The journal keeps who chose (``--who``, else the login name) and when (UTC).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.errors import InputError
from runner.manifest.regular_file import Refused, read_regular
from runner.reports.origin import RunTakes, read_takes
from runner.store.factory import open_store
from runner.store.records import Record

#: A selects file is a few hundred bytes; a megabyte is not one.
MAX_FILE = 1024 * 1024
_ITEM = re.compile(r"(?P<shot>[A-Za-z0-9][A-Za-z0-9_-]{0,63}):(?:t)?(?P<take>[0-9]{1,6})")


@dataclass(frozen=True)
class Pick:
    """One ``SHOT:TAKE`` and where it was given (``file:line``, or ``argument 'x'``)."""

    shot: str
    take: int
    where: str

    @property
    def item(self) -> str:
        return f"{self.shot}:{self.take}"


def parse_arg(text: str) -> Pick:
    """``SHOT:TAKE`` from the command line; InputError naming the argument."""
    return _pick(text.strip(), f"argument {text!r}")


def parse_file(path: Path) -> list[Pick]:
    """Every ``SHOT:TAKE`` of a selects file; InputError naming the file, the line and the text."""
    try:
        raw = read_regular(path, MAX_FILE)
    except Refused as exc:
        raise InputError(f"{path}: cannot read the selects file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the selects file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{at}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    picks = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if item:
            picks.append(_pick(item, f"{path}:{number}"))
    if not picks:
        raise InputError(f"{path}: no SHOT:TAKE line in it (a selects file has one a line, e.g. harbor:2)")
    return picks


def _pick(item: str, where: str) -> Pick:
    found = _ITEM.fullmatch(item)
    if found is None:
        shown = item if len(item) <= 80 else item[:79] + "…"
        raise InputError(f"{where}: {shown!r} is not SHOT:TAKE (a shot id, a colon, a take number: harbor:2)")
    return Pick(found["shot"], int(found["take"]), where)


def resolve(picks: Sequence[Pick], takes: RunTakes) -> list[Record]:
    """The record of each pick; InputError for the first that is unknown, not done, or a shot's second."""
    shots = takes.shots
    seen: dict[str, Pick] = {}
    chosen = []
    for pick in picks:
        if pick.shot not in shots:
            known = ", ".join(list(shots)[:8]) + (", …" if len(shots) > 8 else "")
            have = f"shots: {known}" if shots else "it has no takes yet"
            raise InputError(f"{pick.where}: {pick.item}: no shot {pick.shot!r} in this run ({have})")
        numbers = shots[pick.shot]
        if pick.take not in numbers:
            raise InputError(
                f"{pick.where}: {pick.item}: shot {pick.shot!r} has no take {pick.take} "
                f"(takes {numbers[0]}–{numbers[-1]})"
            )
        record = takes.by_number[(pick.shot, pick.take)]
        if record.state != "done":
            state = "paid but not saved" if record.paid_not_saved else record.state
            raise InputError(
                f"{pick.where}: {pick.item}: the take is {state}, not done; only a done take is a select"
            )
        earlier = seen.get(pick.shot)
        if earlier is not None and earlier.take != pick.take:
            raise InputError(
                f"{pick.where}: {pick.item}: a second take of shot {pick.shot!r} ({earlier.item} at "
                f"{earlier.where}); one select per shot"
            )
        seen[pick.shot] = pick
        chosen.append(record)
    return list({r.key: r for r in chosen}.values())


@dataclass(frozen=True)
class Recorded:
    chosen: list[Record]
    replaced: list[Record]  # earlier selects of the same shots, now forgotten
    who: str
    at: str


def record(run_dir: Path, picks: Sequence[Pick], who: str | None = None) -> Recorded:
    """Check ``picks`` against the journal, then record them (replacing each shot's earlier select)."""
    takes = read_takes(run_dir)
    chosen = resolve(picks, takes)
    shots = {str(r.spec.get("shot")) for r in chosen}
    keys = {r.key for r in chosen}
    replaced = [r for shot, r in takes.selected().items() if shot in shots and r.key not in keys]
    person, at = who or _login(), now_iso()
    journal = open_store(run_dir)
    try:
        journal.select(keys, person, at, instead_of=[r.key for r in replaced])
    finally:
        journal.close()
    return Recorded(chosen, replaced, person, at)


def clear(run_dir: Path, picks: Iterable[Pick] = ()) -> int:
    """Forget the selects of ``picks`` (each must name a take of the run), or every select if none."""
    takes = read_takes(run_dir)
    given = list(picks)
    keys: list[str] | None = None
    if given:
        keys = []
        for pick in given:
            if (pick.shot, pick.take) not in takes.by_number:
                raise InputError(f"{pick.where}: {pick.item}: no such take in this run")
            keys.append(takes.by_number[(pick.shot, pick.take)].key)
    journal = open_store(run_dir)
    try:
        return journal.unselect(keys)
    finally:
        journal.close()


def as_text(takes: RunTakes, *, title: str) -> str:
    """The selects as a selects file (what the page downloads), for ``previz select --list``."""
    lines = [f"# previz selects: {title}"]
    for shot, r in takes.selected().items():
        who, at = takes.selects[r.key]
        lines.append(
            f"{shot}:{int(r.spec.get('take') or 0)}  # {r.label} seed {r.spec.get('seed')}, {who} {at}"
        )
    return "\n".join(lines) + "\n"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (a container without one)
        return "unknown"
