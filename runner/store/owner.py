"""Who is writing a store: one run at a time, kept by the store itself, not by a file beside it.

Why: the run lock (``.lock``, :mod:`runner.store.runlock`) is a file next to the journal. Deleting
it — a tidy-minded user, a sync tool, a cleanup script — let a second run in, and 9 of 13 AIML and
Runway takes were bought twice. So every store holds an *owner row* (token, pid, host, start, last
beat), claimed in a write transaction like any other; the run that holds it refreshes its beat
every :data:`BEAT_S` from a thread of its own (so a busy event loop cannot make it look dead), and
gives it back at the end. A claimant takes the row over only when its holder is provably gone:

- on this host, its process no longer exists (a kill, a crash, a reboot: the common case, taken over
  at once); a process that exists but has not beaten for :data:`SAME_HOST_STALE_S` is a pid reused
  by something else after a reboot;
- on another host (team mode, or a run directory on a shared disk), its beat is older than
  :data:`STALE_S` — that host cannot be asked whether the process lives.

A run that finds its own row taken over (its machine slept past the stale limit and another run
moved in) stops writing: the store refuses every later write, so two runs never write together.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

#: How often the holder refreshes its row.
BEAT_S = 5.0
#: A holder on another host is gone when its beat is this old (twelve missed beats).
STALE_S = 60.0
#: A holder on this host whose pid exists but has not beaten for this long is a reused pid.
SAME_HOST_STALE_S = 600.0
#: Team mode: how long a run's lease on a take lasts without a renewal (renewed every third of it).
LEASE_S = 30.0
#: Team mode: how long the store may be away under a run (restarting, off the network) before the
#: run gives up on it (runner.store.pgconn); ``--store-outage-seconds``.
OUTAGE_S = 120.0


@dataclass(frozen=True)
class Owner:
    """The run writing a store: ``token`` tells it from any other run, ``beat`` is Unix time."""

    token: str
    pid: int
    host: str
    started: str
    beat: float

    def describe(self, now: float) -> str:
        ago = max(0, round(now - self.beat))
        return f"pid {self.pid} on {self.host}, started {self.started}, last seen {ago} s ago"


class Owned(Protocol):
    """What a store offers for ownership (every backend; see ``Store``)."""

    def claim(self, me: Owner) -> Owner | None: ...
    def beat(self, token: str, now: float) -> bool: ...
    def disown(self, token: str) -> None: ...


def this_run() -> Owner:
    """A fresh owner for this process (a new token per run, so a rerun in the same pid differs)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return Owner(secrets.token_hex(8), os.getpid(), socket.gethostname(), started, time.time())


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def is_gone(holder: Owner, now: float, here: str) -> bool:
    """Whether ``holder`` provably no longer writes (see the module docstring for the rule)."""
    if holder.host == here:
        return not pid_alive(holder.pid) or now - holder.beat > SAME_HOST_STALE_S
    return now - holder.beat > STALE_S


def held_message(holder: Owner, now: float, where: str) -> str:
    """Exit 4's line: who holds the store and how to look at it — not a file to delete."""
    return (
        f"another run of this manifest is going ({holder.describe(now)}); "
        f"see it with `previz status {where}`; a run that is gone is taken over by the next run"
    )


@contextlib.contextmanager
def owned(store: Owned, *, warn: Callable[[str], None], beat_s: float = BEAT_S) -> Iterator[Owner]:
    """Hold ``store``'s owner row for the block, beating from a thread; LockHeldError if held."""
    me = this_run()
    taken = store.claim(me)
    if taken is not None and taken.token != me.token:
        warn(f"took over from a run that is gone ({taken.describe(me.beat)})")
    stop = threading.Event()
    beating = threading.Thread(
        target=_beat, args=(store, me, stop, beat_s), name="previz-owner-beat", daemon=True
    )
    beating.start()
    try:
        yield me
    finally:
        stop.set()
        beating.join()
        with contextlib.suppress(Exception):  # a full disk must not hide the run's own outcome
            store.disown(me.token)


def _beat(store: Owned, me: Owner, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            if not store.beat(me.token, time.time()):
                return  # taken over: the store refuses this run's writes from now on
        except Exception:  # a missed beat (a full disk, a lost connection) is tried again
            continue
