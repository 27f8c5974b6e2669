"""Takes the journal holds in flight that this run's manifest no longer names (issue 24 point 3).

Why: a take's key hashes its prompt, image, seed and settings, so editing a prompt — or removing a
shot — after a crash leaves the earlier version's tasks in the journal under keys the new plan
never asks for. Those tasks were paid for. Left alone they were never downloaded and got no
ledger row, and the rerun said done. So a run also collects them: each is rebuilt from its
journal row (the spec the ledger shows), polled by its task id, downloaded to the clip path it
was given, charged, and recorded with the flag ``earlier-manifest``. Nothing is ever *sent* for
one: a submit whose answer was lost is written off (or held), not resent, because the shot it
belonged to is no longer wanted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from runner.manifest.takes import ImageKind, ImageRef, Take
from runner.store.base import Store
from runner.store.records import Record

#: Journal states whose task may exist at the provider: the ones worth collecting.
SENT = ("submitting", "submitted", "succeeded")
#: Never sent, but holding a reservation against the budget: released.
RESERVED = ("reserved",)


@dataclass(frozen=True)
class Strays:
    """What an earlier manifest left: takes to collect, reservations to free, what cannot be reached."""

    takes: tuple[Take, ...]
    records: Mapping[str, Record]
    release: tuple[str, ...]
    unreachable: Mapping[str, int]  # provider this run has no lane for → takes left in flight


def find(held: Iterable[Record], planned: Collection[str], providers: Collection[str]) -> Strays:
    """The records of ``held`` (SENT or RESERVED states) whose key is not in ``planned``."""
    takes: list[Take] = []
    records: dict[str, Record] = {}
    release: list[str] = []
    unreachable: dict[str, int] = {}
    for record in held:
        if record.key in planned:
            continue
        if record.state in RESERVED:
            release.append(record.key)
        elif record.provider not in providers:
            unreachable[record.provider] = unreachable.get(record.provider, 0) + 1
        else:
            takes.append(take_of(record))
            records[record.key] = record
    return Strays(tuple(takes), records, tuple(release), unreachable)


def take_of(record: Record) -> Take:
    """The take an earlier manifest made, rebuilt from its journal row (enough to collect, not to send)."""
    spec = record.spec
    image = ImageRef(source=str(spec.get("image") or ""), kind=ImageKind.URL, content_id="")
    return Take(
        shot=str(spec.get("shot") or record.label.split("#", 1)[0]),
        index=int(spec.get("take") or 1),
        seed=int(spec.get("seed") or 0),
        provider=record.provider,
        model=str(spec.get("model") or ""),
        prompt=str(spec.get("prompt") or ""),
        image=image,
        last_image=None,
        duration=int(spec.get("duration_s") or 0),
        ratio=str(spec.get("ratio") or ""),
        tags=tuple(t for t in str(spec.get("tags") or "").split(";") if t),
        key=record.key,
        earlier=True,
    )


def added(
    journal: Store,
    takes: tuple[Take, ...],
    records: dict[str, Record],
    providers: Collection[str],
    notes: list[str],
) -> tuple[tuple[Take, ...], dict[str, Record]]:
    """This run's takes plus those an earlier manifest left in flight (collected, never resent)."""
    found = find(journal.records(*SENT, *RESERVED).values(), records, providers)
    for key in found.release:
        journal.release(key)
    if found.takes:
        notes.append(
            f"{len(found.takes)} takes of an earlier version of the manifest are still in flight:"
            " collecting them by task id (flag earlier-manifest); nothing is sent for them"
        )
    for provider, count in sorted(found.unreachable.items()):
        notes.append(
            f"{count} takes of an earlier version of the manifest are in flight on {provider}, which"
            " this manifest no longer uses: run the earlier manifest to collect them"
        )
    return (*found.takes, *takes), {**records, **found.records}
