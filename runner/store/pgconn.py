"""A PostgreSQL connection that comes back after the server went away (team mode's faults, DESIGN §7).

Why: a studio's database restarts (an upgrade, a crash, a host reboot) or drops off the network
for a while in the middle of a night. The runs must not die with it — their tasks are in flight
and paid for — and must not pay twice because of it. So every use of the connection goes through
:class:`PgConn`: when the server cuts the connection, it reconnects with backoff (doubling waits,
capped) for up to :attr:`Outage.window_s`, and the call is made again where that is safe:

- a read: always;
- a write transaction that failed before its ``COMMIT`` was sent: the server rolled it back, so it
  is run again whole;
- a ``COMMIT`` whose answer was lost: it may have landed. Each write transaction learns its own id
  first (``pg_current_xact_id()``, in the statement that takes its first lock, so no extra round
  trip); once reconnected, ``pg_xact_status`` says what became of it — *committed*: done, the
  results computed inside it stand; *aborted*: run again; *in progress*: ask again. A charge is
  therefore never written twice, and a write-ahead row is never assumed that is not there.

A store that does not come back within the window raises :class:`StoreGone` (one line naming the
store, its password hidden): the run ends, exit 1, and every later call fails at once rather than
waiting out the window again. The next run recovers from what the store holds, as after a crash.

Calls wait while the store is away (in the store's worker thread, never on the event loop), so
what needs the store waits for it — a new submit for its write-ahead row, a take's end to be
recorded — and what does not (polls, downloads under way) goes on.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from runner.store.base import JournalWriteError
from runner.store.owner import OUTAGE_S
from runner.store.storeurl import without_password

T = TypeVar("T")
C = TypeVar("C", bound=type)
Row = tuple[Any, ...] | None

#: Dead-peer detection for a server that vanished without closing the connection (a network
#: partition): libpq's TCP keepalives and a cap on unacknowledged writes, so a call never hangs.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


@dataclass(frozen=True)
class Outage:
    """How long the store may be away before a run gives up on it, and how often it is asked again."""

    window_s: float = OUTAGE_S  # ``--store-outage-seconds``: past this, the run ends (exit 1)
    first_s: float = 0.2  # the first wait before reconnecting; doubled each time
    most_s: float = 5.0  # the longest wait between two tries
    connect_timeout_s: int = 10  # one try to connect (libpq's connect_timeout)


class StoreGone(JournalWriteError):
    """The store did not come back within the outage window: the run stops (exit 1)."""


class Rerun(Exception):
    """The call provably did not take effect; the connection is back: make it again."""


class PgConn:
    """One connection, its mutex, and its way back after an outage (see the module docstring).

    ``setup`` runs on every new connection (``SET``, ``LISTEN``). Thread-safe through
    :attr:`mutex`: a thread that is reconnecting holds it, so the others wait for the same outcome.
    """

    def __init__(
        self,
        url: str,
        location: str,
        outage: Outage = Outage(),
        *,
        setup: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        self._url = url
        self.location = location
        self.outage = outage
        self._setup = setup
        self.mutex = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._gone: str | None = None  # why every call fails from now on (the window ran out)
        self.reconnects = 0  # times the connection came back (for tests and the docs' figures)
        self.down_s = 0.0  # seconds spent without a connection, all outages together

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "connect() first"
        return self._conn

    def connect(self, *, patient: bool = False) -> psycopg.Connection[Any]:
        """The first connection; the driver's error as it comes (a bad URL is exit 2, not an
        outage) — unless ``patient``: a server the run already reached is waited for."""
        try:
            self._conn = self._new()
        except psycopg.Error as exc:
            if not patient:
                raise
            with self.mutex:
                self.recover(exc)
        return self.conn

    def _new(self) -> psycopg.Connection[Any]:
        timeout = max(1, min(self.outage.connect_timeout_s, int(self.outage.window_s) or 1))
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=timeout, **KEEPALIVES)
        try:
            if self._setup is not None:
                self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (the server restarted, the network broke)."""
        return isinstance(exc, psycopg.OperationalError) and (self._conn is None or self._conn.broken)

    def check(self) -> None:
        """StoreGone at once when an earlier call already waited out the window."""
        if self._gone is not None:
            raise StoreGone(self._gone)

    def recover(self, why: BaseException) -> None:
        """A new connection, waiting with backoff up to the window; StoreGone when it runs out.

        Called with :attr:`mutex` held, by the thread whose call found the connection gone.
        """
        self.check()
        start = time.monotonic()
        delay, reason = self.outage.first_s, why
        while True:
            left = self.outage.window_s - (time.monotonic() - start)
            if left <= 0:
                self._give_up(reason)
            time.sleep(min(delay, left))
            delay = min(delay * 2, self.outage.most_s)
            try:
                fresh = self._new()
            except psycopg.Error as exc:
                reason = exc
                continue
            with contextlib.suppress(psycopg.Error):
                if self._conn is not None:
                    self._conn.close()
            self._conn = fresh
            self.reconnects += 1
            self.down_s += time.monotonic() - start
            return

    def _give_up(self, reason: BaseException) -> None:
        words = without_password(str(reason), self._url) or type(reason).__name__
        self._gone = (
            f"{self.location}: the store has not answered for {self.outage.window_s:g} s ({words});"
            " the run stops here, and a rerun picks up where it stopped"
        )
        raise StoreGone(self._gone) from None

    def try_reconnect(self) -> bool:
        """One try at a new connection, no waiting (for a connection that only listens)."""
        try:
            fresh = self._new()
        except psycopg.Error:
            return False
        with contextlib.suppress(psycopg.Error):
            if self._conn is not None:
                self._conn.close()
        self._conn = fresh
        return True

    # --- using it -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for reads (or writes that are safe to make twice), under the mutex; a
        lost connection is recovered and :class:`Rerun` raised for the caller to ask again."""
        with self.mutex:
            self.check()
            try:
                yield self.conn
            except psycopg.Error as exc:
                if not self.lost(exc):
                    raise
                self.recover(exc)
                raise Rerun from exc

    @contextlib.contextmanager
    def writing(self, first: str, args: tuple[Any, ...]) -> Iterator[tuple[psycopg.Connection[Any], Row]]:
        """One write transaction, the mutex held (see the module docstring for what is made again):
        the connection, and the row ``first`` found (None if it found none).

        ``first`` is the transaction's first statement; its first column must be
        ``pg_current_xact_id()::text`` (if it finds no row, the id is asked for on its own).
        A failure that is not a lost connection is raised as it is, the transaction rolled back.
        """
        with self.mutex:
            self.check()
            conn, xid, committing = self.conn, None, False
            try:
                with conn.transaction():
                    row = conn.execute(first, args).fetchone()
                    xid = str(row[0]) if row else _xid(conn)
                    yield conn, row
                    committing = True
            except psycopg.Error as exc:
                if not self.lost(exc):
                    raise
                self.recover(exc)
                if committing and self._committed(xid):
                    return  # the COMMIT landed; only its answer was lost
                raise Rerun from exc

    def _committed(self, xid: str | None) -> bool:
        """What became of a transaction whose COMMIT went unanswered (asked on the new connection)."""
        start = time.monotonic()
        while True:
            try:
                row = self.conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
            except psycopg.Error as exc:
                if not self.lost(exc):
                    raise
                self.recover(exc)
                continue
            status = row[0] if row else None
            if status in ("committed", "aborted"):
                return bool(status == "committed")
            if status is None or time.monotonic() - start > self.outage.window_s:
                raise JournalWriteError(
                    f"{self.location}: cannot tell whether the last write landed (transaction {xid}"
                    f" is {status or 'unknown'}); nothing more is sent"
                )
            time.sleep(self.outage.first_s)  # in progress: the old session is still finishing it

    def close(self) -> None:
        with self.mutex:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()


def _xid(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
    assert row is not None
    return str(row[0])


def again(call: Callable[[], T]) -> T:
    """Make ``call`` until it is not answered :class:`Rerun` (each time the connection came back)."""
    while True:
        try:
            return call()
        except Rerun:
            continue


def comes_back(*names: str) -> Callable[[C], C]:
    """A class decorator: the methods ``names`` are made again after a lost connection (:func:`again`).

    Listed, not decorated one by one, so the bodies of a store's methods read as plain SQL.
    """

    def wrap(cls: C) -> C:
        for name in names:
            method = getattr(cls, name)
            setattr(cls, name, _retried(method))
        return cls

    return wrap


def _retried(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def retried(self: object, *args: Any, **kwargs: Any) -> T:
        return again(functools.partial(method, self, *args, **kwargs))

    return retried


class Scoped:
    """What the parts of a PostgreSQL store (its mixins) need from it: the scope, and the
    connection to read on (``_conn`` under ``_lock``) or write on (``_tx``)."""

    _scope: str

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        raise NotImplementedError

    @property
    def _lock(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError
