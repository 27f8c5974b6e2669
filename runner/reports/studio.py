"""The studio-wide view of a team store: ``previz report --store`` and ``previz status --store``.

Why: with team mode a night's ledgers are spread over every workstation's run directory, and
no one folder holds the bill. The store does: each ledger row is kept there with the manifest it
belongs to and the run directory (``host:path``) whose ``ledger.csv`` holds it, so the studio's
bill is the sum of every machine's ledgers without collecting them — by manifest, account, host,
day and tag, with the same sums and counting rules as ``previz report`` over ledger files
(:mod:`runner.reports.report`). The live view is one snapshot of the store by its own clock
(:mod:`runner.store.pgstudio`). Nothing here writes, and PostgreSQL is imported only when a store
is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ConfigError
from runner.reports.report import STUDIO_GROUPS, Source, slim, totals

if TYPE_CHECKING:
    from runner.store.pgstudio import Snapshot, StoredRow, Studio


@contextlib.contextmanager
def opened(url: str) -> Iterator[Studio]:
    """The store, read-only, for the block; exit 2's errors when it is not one or cannot be reached."""
    try:
        from runner.store.pgstudio import Studio
    except ImportError as exc:  # the 'team' extra was not installed
        raise ConfigError("a postgresql:// store needs psycopg: pip install 'previz-runner[team]'") from exc
    studio = Studio.open(url)
    try:
        yield studio
    finally:
        studio.close()


def bill(url: str) -> dict[str, Any]:
    """``report --store``: the totals of every ledger row on the store (``report --format json``)."""
    with opened(url) as studio:
        accounts = studio.account_of_provider()
        sources = sources_of(studio.rows(), accounts)
        report = totals(sources, STUDIO_GROUPS)
        return {"store": studio.location, **report}


def sources_of(rows: Iterable[StoredRow], accounts: Mapping[str, str]) -> list[Source]:
    """One source per run directory that saved rows (as its ledger files hold them), in the order
    each first wrote; each row named by its manifest, account and host."""
    by_place: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for stored in rows:
        row = slim(stored.row)
        provider = str(row.get("provider") or "")
        row["manifest"] = stored.scope
        row["account"] = accounts.get(provider, provider) or "(unknown)"
        row["host"] = stored.host or "(unknown)"
        by_place.setdefault((stored.saved_in, stored.scope), []).append(row)
    return [
        Source(
            Path(saved_in.split(":", 1)[-1]),
            tuple(kept),
            place=f"{saved_in or '(no run directory)'} ({scope})",
        )
        for (saved_in, scope), kept in by_place.items()
    ]


# --- status --store ------------------------------------------------------------------------------


def view(url: str) -> dict[str, Any]:
    """``status --store``: every manifest (takes by state, money, runs, leases) and every account."""
    with opened(url) as studio:
        snap = studio.snapshot()
        return {"store": studio.location, **view_of(snap)}


def view_of(snap: Snapshot) -> dict[str, Any]:
    manifests = []
    for m in snap.manifests:
        manifests.append(
            {
                "manifest": m.scope,
                "counts": m.counts,
                "takes": sum(m.counts.values()),
                "spent_usd": m.spent_usd,
                "reserved_usd": m.reserved_usd,
                "budget_usd": m.budget_usd,
                "runs": [_plain(r, "scope") for r in snap.runs if r.scope == m.scope],
                "leases": [_plain(le, "scope") for le in snap.leases if le.scope == m.scope],
            }
        )
    return {"now": snap.now, "manifests": manifests, "accounts": [_plain(a) for a in snap.accounts]}


def _plain(item: Any, *drop: str) -> dict[str, Any]:
    return {k: v for k, v in vars(item).items() if k not in drop}


def view_lines(found: Mapping[str, Any]) -> list[str]:
    """The view as the terminal shows it: a few lines per manifest, one per account."""
    lines = [f"store {found['store']} · {found['now']} by the store's clock"]
    if not found["manifests"]:
        lines.append("no manifest has run on this store yet")
    for m in found["manifests"]:
        lines += _manifest_lines(m)
    lines += [account_line(a) for a in found["accounts"]]
    return lines


def account_line(a: Mapping[str, Any]) -> str:
    """One account: its slots in flight and by whom, and today's spend against its daily cap."""
    held = ", ".join(f"{who} {n}" for who, n in a["holders"].items())
    slots = "slots not set yet" if a["slots"] is None else f"{a['in_flight']} of {a['slots']} slots in flight"
    today = (
        f"today (UTC) {_takes(a['today_takes'])}, spent ${a['today_spent_usd']:.4f},"
        f" held ${a['today_reserved_usd']:.4f}"
    )
    cap = "no daily cap" if a["daily_usd"] is None else f"daily cap ${a['daily_usd']:.2f}"
    waiting = f" · waiting for a slot: {', '.join(a['waiting'])}" if a.get("waiting") else ""
    holders = f" — {held}" if held else ""
    return f"account {a['account']}: {slots}{holders}{waiting} · {today} · {cap}"


def _manifest_lines(m: Mapping[str, Any]) -> list[str]:
    states = ", ".join(f"{n} {state}" for state, n in m["counts"].items()) or "no takes"
    lines = [
        f"manifest {m['manifest']}: {_takes(m['takes'])} ({states}) · spent ${m['spent_usd']:.4f}"
        + ("" if m.get("budget_usd") is None else f" of budget ${m['budget_usd']:.2f}")
        + f", held for takes in flight ${m['reserved_usd']:.4f}"
    ]
    for run in m["runs"]:
        alive = "live" if run["live"] else "gone"
        lines.append(
            f"  run on {run['host']} pid {run['pid']} since {run['started']}: {alive},"
            f" beat {run['beat_age_s']:.1f} s ago"
        )
    for lease in m["leases"]:
        who = f"{lease['host']} pid {lease['pid']}" if lease["host"] else f"run {lease['run']} (gone)"
        lines.append(
            f"  {_takes(lease['takes'])} leased by {who} until {lease['until']}"
            f" ({lease['left_s']:.1f} s left)"
        )
    return lines


def _takes(n: int) -> str:
    return f"{n} take" if n == 1 else f"{n} takes"
