"""Incremental Server-Sent Events splitter over raw bytes.

Why not a library: the load step timestamps each network read before any parsing, then needs
the `data:` payloads of the events that read completed, as bytes, with as little work per chunk
as possible. A read may hold part of an event, one event, or several; an event may end in one
read and start in another. Line ends may be LF, CRLF or CR (SSE spec); a CR ending a read
counts as a line end at once (no event waits for the next read), and an LF starting the next
read is then dropped as the second half of that CRLF.

Each byte is looked at a bounded number of times: only the new read is searched for the blank
line that ends an event, and the unfinished event grows in place (a bytearray), never re-copied
per read. A line that never ends would otherwise cost quadratic CPU and unbounded memory, so
the unfinished event is capped (`max_event_bytes`): past it, `feed` raises `EventTooLarge`.
"""

from __future__ import annotations

__all__ = ["EventTooLarge", "SseSplitter"]


class EventTooLarge(ValueError):
    """An event grew past the splitter's cap without ending (a server that never ends a line)."""


class SseSplitter:
    """Feed raw bytes, get the `data` payload of every event completed so far.

    Follows the SSE spec where it matters here: several `data:` lines in one event are joined
    with LF, one space after the colon is dropped, comments (`:`) and other fields (`event`,
    `id`, `retry`, unknown names) are ignored, and events without data are not dispatched.
    """

    __slots__ = ("_buf", "_max", "_skip_lf")

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        # The unfinished event, line ends already normalized to LF: the tail of one read as is,
        # a bytearray grown in place once more reads add to it.
        self._buf: bytes | bytearray = b""
        self._max = max_event_bytes
        self._skip_lf = False

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated by a blank line (empty when none)."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add a read's bytes; return the payloads of the events it completed, in order.

        Raises EventTooLarge when the unfinished event would exceed `max_event_bytes`.
        """
        if self._skip_lf and data:
            # The previous read ended in CR, already taken as a line end: this LF is its pair.
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        if b"\r" in data:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = data.split(b"\n\n")
        if self._buf:
            parts = self._resume(data, parts)
        tail = parts.pop()
        out: list[bytes] = []
        for event in parts:  # inline: this loop runs once per chunk of every stream
            # Fast path, the usual single `data: {...}` line; anything else goes to _event_data.
            if event.startswith(b"data:") and b"\n" not in event:
                out.append(event[6:] if event.startswith(b"data: ") else event[5:])
            elif event:
                payload = _event_data(event)
                if payload is not None:
                    out.append(payload)
        if tail:
            if len(tail) > self._max:
                raise self._too_large()
            self._buf = tail
        return out

    def _too_large(self) -> EventTooLarge:
        return EventTooLarge(f"SSE event longer than {self._max} bytes without a blank line")

    def _resume(self, data: bytes, parts: list[bytes]) -> list[bytes]:
        """`parts` (the read split on blank lines) with the unfinished event joined in front.

        Only the boundary with the new bytes can end that event; while it does not end, it
        grows in place and `[b""]` (nothing completed, no new tail) comes back.
        """
        buf = self._buf
        if buf[-1] == 0x0A and data[:1] == b"\n":  # the blank line straddles the two reads
            parts = data[1:].split(b"\n\n")
            parts.insert(0, bytes(buf[:-1]))
        elif len(parts) == 1:
            if len(buf) + len(data) > self._max:
                raise self._too_large()
            if isinstance(buf, bytes):
                self._buf = buf = bytearray(buf)
            buf += data
            return [b""]
        else:
            parts[0] = (buf if isinstance(buf, bytes) else bytes(buf)) + parts[0]
        self._buf = b""
        return parts


def _event_data(event: bytes) -> bytes | None:
    """The joined data lines of any event but a single `data:` line, None when it has no data."""
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
        elif line == b"data":
            lines.append(b"")
    return b"\n".join(lines) if lines else None
