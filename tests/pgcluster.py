"""A throwaway PostgreSQL cluster for the tests, from the machine's own server binaries.

Real PostgreSQL, no mock: ``initdb`` into a temporary folder, one ``postgres`` listening on
127.0.0.1 at a free port, stopped (immediately) at the end of the session. Debian's ``postgresql``
package puts the binaries in ``/usr/lib/postgresql/<version>/bin`` (``.ci/run`` installs it when
missing). ``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres``
system user. Durability settings are relaxed (``fsync=off``): the tests stop and restart the
server, they never crash the machine under it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """One running server; :meth:`url` names a database on it."""

    bin: Path
    data: Path
    port: int
    as_user: str | None  # the system user that owns the cluster (root cannot)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://previz@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.data.parent}"
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.data.parent / "server.log"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """What a database restart does to a run: every connection cut, the server back."""
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "previz", name)
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Initialise and start a cluster in a fresh folder of /tmp (the server's user must reach it)."""
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="previz-pg-"))
    as_user = "postgres" if os.geteuid() == 0 else None
    if as_user:
        entry = pwd.getpwnam(as_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bin_dir, root / "data", _free_port(), as_user)
    cluster._run(
        str(bin_dir / "initdb"),
        "-D",
        str(cluster.data),
        "-A",
        "trust",
        "-U",
        "previz",
        "-E",
        "UTF8",
        "--no-sync",
    )
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def settled(url: str, lease_s: float) -> None:
    """Wait until a lease of ``lease_s`` can lapse on this server: only once it has been up a lease
    time and 10 s (the grace after a restart, runner/store/postgres.py). A session's server that
    has just started is waited for, as a studio's would have been up for long."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())"
        ).fetchone()
    up = float(row[0]) if row else 0.0
    time.sleep(max(0.0, lease_s + 10.0 - up + 0.1))
