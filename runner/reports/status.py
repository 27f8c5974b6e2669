"""``previz status`` and ``previz cancel``: a run directory's state, read from its journal.

Status is read-only (the journal is opened ``mode=ro``, WAL lets it read while a run writes), so it
works while a run is going and says whether one holds the lock. It also checks each done take's
clip on disk: missing, or changed since it was saved (size, then sha256).

Cancel asks the providers that can (Runway: ``DELETE /v1/tasks/{id}``) to cancel the tasks the
journal shows in flight, and records them ``cancelled``; for AIML and Runware it says they cannot,
and leaves those takes for the next run to collect.

On a team store (``--store``) both read the manifest's takes there (its scope: the manifest's
name, or the run directory's). Cancel first leases each take it would cancel, as a run does: a
take that a live run on any machine holds is left to that run (it is polling the task, and would
record its end too) and named, so nothing is recorded twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from runner.errors import InputError, PrevizError
from runner.providers.base import ProviderConfig
from runner.providers.registry import build_provider
from runner.reports.ledger import LedgerFiles
from runner.reports.summary import selects_of, take_counts
from runner.store.base import Store
from runner.store.factory import open_store
from runner.store.owner import LEASE_S, owned
from runner.store.records import Record
from runner.store.runlock import describe, holder, is_held, run_lock
from runner.store.sqlite import FILENAME

IN_FLIGHT_STATES = ("reserved", "submitting", "submitted")


def resolve_run_dir(path: Path) -> Path:
    """A run directory as given, or the one a manifest names (DESIGN §3)."""
    if path.is_dir():
        if not (path / FILENAME).exists():
            raise InputError(f"{path}: no {FILENAME} here; give a run directory or a manifest")
        return path.resolve()
    from runner.manifest.document import load_manifest

    run_dir = load_manifest(path).run_dir.resolve()
    if not (run_dir / FILENAME).exists():
        raise InputError(f"{path}: no run yet ({run_dir / FILENAME} does not exist)")
    return run_dir


def resolve_target(path: Path, url: str | None) -> tuple[Path, str]:
    """The run directory and, on a team store, the manifest's scope there (``""`` without one).

    A team run directory has no ``journal.sqlite`` (its journal is the store): a directory is
    taken as it is, named by the manifest it belongs to (DESIGN §3), and a manifest names both.
    """
    if url is None:
        return resolve_run_dir(path), ""
    if path.is_dir():
        run_dir, scope = path.resolve(), path.resolve().name
    else:
        from runner.manifest.document import load_manifest

        manifest = load_manifest(path)
        run_dir, scope = manifest.run_dir.resolve(), manifest.name
    journal = open_store(run_dir, url=url, scope=scope, readonly=True)
    try:
        if not journal.records():
            raise InputError(f"{journal.location}: no takes of manifest {scope!r} on this store")
    finally:
        journal.close()
    return run_dir, scope


def clip_problem(run_dir: Path, record: Record, *, hash_clips: bool = True) -> str | None:
    """Why a done take's clip is not what the journal recorded, or None when it is."""
    if record.state != "done" or record.output is None:
        return None
    clip = run_dir / record.output
    if not clip.is_file():
        return "missing"
    if record.bytes is not None and clip.stat().st_size != record.bytes:
        return "altered (size)"
    if hash_clips and record.sha256 and _sha256(clip) != record.sha256:
        return "altered (sha256)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def take_view(run_dir: Path, record: Record) -> dict[str, Any]:
    spec = record.spec
    return {
        "take": record.label,
        "shot": spec.get("shot"),
        "seed": spec.get("seed"),
        "provider": record.provider,
        "state": "paid_not_saved" if record.paid_not_saved else record.state,
        "task_id": record.handle,
        "attempts": record.attempt,
        "cost_usd": record.cost_usd,
        "failure": f"{record.failure_kind}: {record.failure_message}" if record.failure_kind else None,
        "output": record.output,
        "clip": clip_problem(run_dir, record),
        "flags": list(record.flags),
        "key": record.key,
    }


def status(run_dir: Path, *, url: str | None = None, scope: str = "") -> dict[str, Any]:
    """The whole picture of a run directory, as ``status --json`` prints it."""
    journal = open_store(run_dir, url=url, scope=scope, readonly=True)
    try:
        records = list(journal.records().values())
        money = journal.money()
        owner = journal.holder()
        selects = selects_of(journal)
    finally:
        journal.close()
    takes = [take_view(run_dir, r) for r in sorted(records, key=lambda r: r.label)]
    running = owner is not None or is_held(run_dir)
    if owner is not None:
        who: str | None = owner.describe(time.time())
    else:
        who = describe(holder(run_dir)) if running else None
    return {
        "run_dir": str(run_dir),
        "running": running,
        "holder": who,
        "counts": take_counts(records),
        "clip_problems": sum(1 for t in takes if t["clip"]),
        "spent_usd": round(money.spent_usd, 6),
        "reserved_usd": round(money.reserved_usd, 6),
        "selects": selects,
        "takes": takes,
    }


@dataclass(frozen=True)
class Cancelled:
    cancelled: list[str]  # take labels
    cannot: dict[str, list[str]]  # provider → take labels it cannot cancel
    errors: list[str]
    held: list[str] = field(default_factory=list)  # team store: leased by a live run, left to it


async def cancel(
    run_dir: Path, configs: Mapping[str, ProviderConfig], *, url: str | None = None, scope: str = ""
) -> Cancelled:
    """Cancel in-flight tasks where the provider allows; record them ``cancelled`` (lock held)."""
    with (
        run_lock(run_dir),
        contextlib.closing(open_store(run_dir, url=url, scope=scope)) as journal,
        owned(journal, warn=lambda _message: None) as me,
        contextlib.closing(LedgerFiles(run_dir)) as ledger,
    ):
        flying = in_flight(journal)
        held: list[str] = []
        if url:
            flying, held = _leased(journal, flying, me.token)
        return await _cancel_all(journal, ledger, flying, configs, held)


def in_flight(journal: Store) -> list[Record]:
    """The takes whose task is at a provider and not known to have ended."""
    return [r for r in journal.records().values() if r.state in IN_FLIGHT_STATES and r.handle]


def _leased(journal: Store, flying: list[Record], run: str) -> tuple[list[Record], list[str]]:
    """The takes this cancel could lease (fresh records), and the labels of those a live run holds."""
    mine: list[Record] = []
    held: list[str] = []
    for record in flying:
        fresh = journal.lease(record.key, run, LEASE_S)
        if fresh is None:
            held.append(record.label)
        elif fresh.state in IN_FLIGHT_STATES and fresh.handle:
            mine.append(fresh)
    return mine, held


async def _cancel_all(
    journal: Store,
    ledger: LedgerFiles,
    flying: list[Record],
    configs: Mapping[str, ProviderConfig],
    held: list[str],
) -> Cancelled:
    done: list[str] = []
    cannot: dict[str, list[str]] = {}
    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        providers = {name: build_provider(c, session) for name, c in configs.items()}
        for record in flying:
            provider = providers.get(record.provider)
            if provider is None or not provider.can_cancel:
                cannot.setdefault(record.provider, []).append(record.label)
                continue
            try:
                await provider.cancel(record.handle or "")
            except PrevizError as exc:
                errors.append(f"{record.label}: {exc}")
                continue
            _record_cancelled(journal, record)
            done.append(record.label)
    ledger.sync(journal)
    return Cancelled(done, cannot, errors, held)


def _record_cancelled(journal: Store, record: Record) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    spec = record.spec
    row = {
        **{k: spec.get(k) for k in ("shot", "take", "seed", "provider", "model", "duration_s", "ratio")},
        **{k: spec.get(k) for k in ("prompt", "image", "tags")},
        "run_id": "cancel",
        "manifest": None,
        "task_id": record.handle,
        "status": "cancelled",
        "failure_kind": None,
        "failure_message": "cancelled by previz cancel",
        "cost_usd": 0.0,
        "cost_source": "estimated",
        "submitted_at": record.submitted_at,
        "finished_at": now,
        "attempts": record.attempt,
        "key": record.key,
        "flags": "cancelled",
        "host": socket.gethostname(),
    }
    journal.charge(
        record.key, row, state="cancelled", finished_at=now, failure_message=row["failure_message"]
    )
