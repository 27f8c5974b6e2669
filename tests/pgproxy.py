"""A TCP proxy between a store and its PostgreSQL server that cuts the line when told to.

Why: "the COMMIT landed but its answer was lost" cannot be had on demand by restarting a server.
A proxy that forwards the COMMIT and then cuts both sides before the answer comes back makes it
happen every time, with the real driver on one side and the real server on the other (no mock).
It also plays a server that is away (every connection cut, new ones refused) and comes back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

#: The simple-protocol message psycopg sends to end a transaction: 'Q', length 11, "COMMIT\0".
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class Proxy:
    """``127.0.0.1:port`` forwarding to the server at ``target``; see the module docstring."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._down = False
        self._cut: str | None = None  # "before" / "after" the next COMMIT
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        return url.replace(f":{self._target}/", f":{self.port}/")

    def cut_at_commit(self, when: str) -> None:
        """The next COMMIT: cut the line ``before`` it reaches the server, or ``after`` (its answer lost)."""
        self._cut = when

    def down(self) -> None:
        """Every connection cut, new ones refused (as a server that is away)."""
        with self._lock:
            self._down = True
            for sock in self._open:
                _shut(sock)
            self._open.clear()

    def up(self) -> None:
        self._down = False

    def close(self) -> None:
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down:
                _shut(client)
                continue
            server = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open += [client, server]
            muted = threading.Event()
            threading.Thread(target=self._up, args=(client, server, muted), daemon=True).start()
            threading.Thread(target=self._back, args=(server, client, muted), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, muted: threading.Event) -> None:
        for chunk in _chunks(client):
            if COMMIT in chunk and self._cut is not None:
                when, self._cut = self._cut, None
                self.cuts += 1
                if when == "after":
                    muted.set()  # the server's answer is dropped
                    server.sendall(chunk)
                    time.sleep(0.3)  # it commits meanwhile
                _shut(client)
                _shut(server)
                return
            with contextlib.suppress(OSError):
                server.sendall(chunk)
        _shut(server)

    def _back(self, server: socket.socket, client: socket.socket, muted: threading.Event) -> None:
        for chunk in _chunks(server):
            if not muted.is_set():
                with contextlib.suppress(OSError):
                    client.sendall(chunk)
        _shut(client)


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        yield chunk


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
