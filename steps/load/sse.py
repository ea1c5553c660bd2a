"""Incremental Server-Sent Events splitter over raw bytes.

Why not a library: the load step timestamps each network read before any parsing, then needs
the `data:` payloads of the events that read completed, as bytes, with as little work per chunk
as possible. A read may hold part of an event, one event, or several; an event may end in one
read and start in another. Line ends may be LF, CRLF or CR (SSE spec); a CR ending a read
counts as a line end at once (no event waits for the next read), and an LF starting the next
read is then dropped as the second half of that CRLF.
"""

from __future__ import annotations

__all__ = ["SseSplitter"]


class SseSplitter:
    """Feed raw bytes, get the `data` payload of every event completed so far.

    Follows the SSE spec where it matters here: several `data:` lines in one event are joined
    with LF, one space after the colon is dropped, comments (`:`) and other fields (`event`,
    `id`, `retry`, unknown names) are ignored, and events without data are not dispatched.
    """

    __slots__ = ("_buf", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated by a blank line (empty when none)."""
        return self._buf

    def feed(self, data: bytes) -> list[bytes]:
        """Add a read's bytes; return the payloads of the events it completed, in order."""
        if self._skip_lf and data:
            # The previous read ended in CR, already taken as a line end: this LF is its pair.
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = buf.split(b"\n\n")
        self._buf = parts.pop()
        out: list[bytes] = []
        for event in parts:
            # Fast path: the usual single `data: {...}` line.
            if event.startswith(b"data:") and b"\n" not in event:
                out.append(event[6:] if event.startswith(b"data: ") else event[5:])
            elif event:
                payload = _event_data(event)
                if payload is not None:
                    out.append(payload)
        return out


def _event_data(event: bytes) -> bytes | None:
    """The joined data lines of a multi-line event, or None when it has no data field."""
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
        elif line == b"data":
            lines.append(b"")
    return b"\n".join(lines) if lines else None
