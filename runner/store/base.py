"""The store seam: what the engine, the reports and the commands need of the durable record.

One protocol, as httpx has one transport: the engine never knows whether its takes live in a
``journal.sqlite`` beside the clips (the default) or in a studio's PostgreSQL (team mode, DESIGN
§7). Every backend passes the same suite (``tests/store/test_store_contract.py``).

The operations are named for what they mean to money, not for SQL. Reads return immutable
:class:`Record` and :class:`Money` values. Writes come in two forms: a method that is its own
transaction (``reserve``, ``update``, ``release``, ``charge``, ``plan``, ``reclaim``), and an
``op_*`` twin that runs inside a transaction its caller holds — :meth:`Store.batch` runs many of
them in one commit, which is how the event loop's group commit (``AsyncJournal``) pays one fsync
for every take that wrote together.

Why synchronous: each backend's commit is a blocking fsync or a network round trip, and the event
loop must never wait on one; ``AsyncJournal`` runs every call in one worker thread, for any
backend alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from runner.errors import InputError, PrevizError
from runner.store.owner import LEASE_S, Owner
from runner.store.records import Money, Pending, Record

R = TypeVar("R")

#: What :meth:`Store.plan` is given per take: key, label, provider, spec, wanted clip path.
PlannedTake = tuple[str, str, str, Mapping[str, Any], str]


class JournalError(InputError):
    """The store cannot be used (corrupt, foreign, or written by a newer previz): exit 2, one line."""


class JournalWriteError(PrevizError):
    """The store cannot be written mid-run (disk full, the file deleted or replaced, the run taken
    over): the run stops, exit 1.

    Nothing is sent without its write-ahead row, so what is on disk stays consistent; a task whose
    id could not be recorded is the uncertain case on the next run.
    """


class Store(Protocol):
    """The durable record of one run directory's takes (see the module docstring)."""

    @property
    def run_dir(self) -> Path:
        """This machine's run directory: where its clips go (and, for SQLite, the journal)."""
        ...

    @property
    def location(self) -> str:
        """Where the record lives, for messages: a file's path, or a URL without its password."""
        ...

    def close(self) -> None: ...

    # --- reading ------------------------------------------------------------------------------

    def records(self, *states: str) -> dict[str, Record]:
        """Every take's record by key (only those in ``states``, when given)."""
        ...

    def get(self, key: str) -> Record:
        """One take's record; KeyError when the store has no such take."""
        ...

    def money(self) -> Money:
        """Spent (the ledger's total) and held (reservations of takes in flight)."""
        ...

    def spend_by_source(self) -> dict[str, float]:
        """What the ledger's rows charged, by ``cost_source``."""
        ...

    def row_seqs(self) -> list[int]:
        """Every ledger row's sequence number, in order; numbers never restart."""
        ...

    def rows_after(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        """Ledger rows after ``seq``, in order (what a ledger file lacks)."""
        ...

    def selects(self) -> dict[str, tuple[str, str]]:
        """The takes an artist chose (the selects), by key: (who, when as ISO 8601 UTC)."""
        ...

    # --- one writer at a time (runner.store.owner) -------------------------------------------

    def claim(self, me: Owner) -> Owner | None:
        """Become the store's writer; LockHeldError while a live run is. Returns the holder taken over."""
        ...

    def beat(self, token: str, now: float) -> bool:
        """Refresh the owner row; False (and every later write refused) when another run took it."""
        ...

    def disown(self, token: str) -> None:
        """Give the owner row back at the end of a run."""
        ...

    def holder(self) -> Owner | None:
        """The run writing this store now, unless none does or it is provably gone (read-only)."""
        ...

    # --- leases: which run works on a take (team mode: many runs share a store) --------------

    def op_lease(self, key: str, run: str, seconds: float) -> Record | None:
        """Hold ``key`` for ``run`` for ``seconds`` (the store's clock) unless it ended or another
        live run holds it; its fresh record, or None. SQLite: every take not ended is this run's."""
        ...

    def lease(self, key: str, run: str, seconds: float) -> Record | None:
        """:meth:`op_lease` as one transaction."""
        ...

    def renew(self, run: str, seconds: float) -> int:
        """Extend every lease ``run`` holds; how many."""
        ...

    def lapsed(self, *, besides: str | None = None, seconds: float = LEASE_S) -> list[Record]:
        """Takes not ended that no live lease holds (a dead run's, or never taken); ``besides``
        a run: only those another run leased and let lapse."""
        ...

    def unended(self, besides: Collection[str] = ()) -> int:
        """How many of the manifest's takes have not ended, ``besides`` those keys."""
        ...

    # --- writing, each call one transaction ---------------------------------------------------

    def adopt(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Into an empty store, the ended takes of a ledger whose store was lost; how many takes."""
        ...

    def plan(self, takes: Iterable[PlannedTake]) -> dict[str, Record]:
        """Add unseen takes as ``planned``, each claiming a clip path no other take holds."""
        ...

    def reclaim(self, key: str) -> Record:
        """A new clip path for a take whose clip was changed on disk."""
        ...

    def select(self, keys: Iterable[str], who: str, at: str, *, instead_of: Iterable[str] = ()) -> None:
        """Record ``keys`` as selects (by ``who``, at ``at``), forgetting ``instead_of`` in the same
        transaction; KeyError (nothing written) for a key the store holds no take of."""
        ...

    def unselect(self, keys: Iterable[str] | None = None) -> int:
        """Forget the selects of ``keys`` (every select when None); how many were forgotten."""
        ...

    def reserve(
        self, key: str, attempt: int, estimate: float, check: Callable[[Money], R | None]
    ) -> R | None:
        """Start an attempt: hold ``estimate`` unless ``check`` refuses (seen inside the transaction)."""
        ...

    def update(self, key: str, **fields: Any) -> None: ...

    def release(self, key: str) -> None:
        """An attempt reserved but provably never sent: back to ``planned``, nothing held."""
        ...

    def charge(self, key: str, row: Mapping[str, Any], *, state: str, **fields: Any) -> dict[str, Any]:
        """End an attempt: its ledger row and its freed reservation in one transaction."""
        ...

    # --- group commit: op_* run inside the transaction batch holds ------------------------------

    def batch(self, pending: Iterable[Pending]) -> None:
        """Run queued calls in one transaction; each call fails alone."""
        ...

    def op_reserve(
        self,
        key: str,
        attempt: int,
        estimate: float,
        check: Callable[[Money], R | None],
        then: Mapping[str, Any] | None = None,
    ) -> R | None: ...

    def op_update(self, key: str, fields: Mapping[str, Any]) -> None: ...

    def op_release(self, key: str) -> None: ...

    def op_charge(
        self, key: str, row: Mapping[str, Any], state: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]: ...
