"""A blocking client call under a wall-clock deadline, its body read under a size cap.

For client libraries that cannot be bounded from inside: `requests` (under Hera's Argo client)
and urllib3 (under the `kubernetes` client) take timeouts per socket operation, so a server that
accepts and never answers, or drips a byte per read, holds the caller for as long as it likes,
and they read a whole body into memory. `call_within` runs the call in a daemon thread and gives
up at the deadline: the thread is left to end by itself on the library's own per-operation
timeout and, being a daemon, never holds the process at exit. `read_capped` gathers a body
piece by piece, stops past the cap and abandons the read once the deadline has passed, so a
thread given up on does not keep reading. The exceptions are also those of steps/http_oneshot.py
(the same limits on the project's own one-off HTTP calls); this module needs nothing beyond the
standard library, so every step's image can use it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["BodyTooLarge", "DeadlineExceeded", "LimitExceeded", "call_within", "read_capped"]

T = TypeVar("T")


class LimitExceeded(Exception):
    """The server did not answer within a limit; the message says which and how far it got."""


class DeadlineExceeded(LimitExceeded):
    """No complete response (head and whole body) before the deadline."""


class BodyTooLarge(LimitExceeded):
    """The body went past the size cap; reading stopped there."""


def call_within(deadline: float, call: Callable[[], T], name: str) -> tuple[bool, T | None]:
    """`call()` in a daemon thread named `name`, given until `deadline` (monotonic): (True,
    result), or (False, None) when it is not done by then; its exception is raised here."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def target() -> None:
        try:
            box.put((True, call()))
        except BaseException as exc:  # handed to the caller's thread
            box.put((False, exc))

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        ok, value = box.get(timeout=max(deadline - time.monotonic(), 0.0))
    except queue.Empty:
        return False, None
    if not ok:
        raise value
    return True, value


def read_capped(pieces: Iterable[bytes], max_bytes: int, deadline: float, what: str) -> bytes:
    """The body from `pieces`; BodyTooLarge past `max_bytes`, DeadlineExceeded past `deadline`
    (monotonic), both naming `what` and stopping the read there."""
    body = bytearray()
    for piece in pieces:
        body += piece
        if len(body) > max_bytes:
            raise BodyTooLarge(f"{what}: body larger than {max_bytes:,} bytes; stopped reading")
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"{what}: body not complete by the deadline; stopped reading")
    return bytes(body)
