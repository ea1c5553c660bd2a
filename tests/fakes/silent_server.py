"""Hostile HTTP servers on 127.0.0.1 for wall-clock limits: one that accepts and never answers,
one that drips its response head a byte at a time (a per-socket-read timeout never fires), and
one that answers 200 with an endless body."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

__all__ = ["Behaviour", "hostile_server"]

Behaviour = Literal["silent", "drip", "endless"]
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def _serve(conn: socket.socket, behaviour: Behaviour, stop: threading.Event) -> None:
    try:
        if behaviour == "drip":
            conn.sendall(_HEAD)
            while not stop.wait(0.05):
                conn.sendall(b"X")  # an ever longer header name: the head never ends
        elif behaviour == "endless":
            conn.sendall(_HEAD + b"Connection: close\r\n\r\n")
            piece = b"[" * 65536
            while not stop.is_set():
                conn.sendall(piece)
        else:
            stop.wait()
    except OSError:
        pass  # the client gave up and closed: what the test wants
    finally:
        conn.close()


@contextmanager
def hostile_server(behaviour: Behaviour) -> Iterator[tuple[str, int]]:
    """(host, port) of a server that treats every connection as `behaviour` says."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_serve, args=(conn, behaviour, stop), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield "127.0.0.1", listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
