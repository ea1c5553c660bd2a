"""A load pod's side of the start coordinator (steps.load.coordinator): one TCP connection for
the whole run, the clock offset against the coordinator, and the barriers.

Clock offset, NTP-style: the pod notes its wall clock t1, asks the coordinator for its clock
t2, notes t3 on the answer; offset = t2 - (t1 + t3) / 2, which is exact when both halves of the
round trip take equally long and off by at most half the round trip otherwise. Of
`CLOCK_SAMPLES` exchanges the one with the shortest round trip is kept (the least queueing).
Inside a cluster a round trip is ~0.1-0.5 ms, so pods start within about that of each other
plus the nodes' own drift during the run (chrony keeps it to microseconds per second).

A barrier's answer names the start on the coordinator's clock; `to_local_ns` turns it into this
pod's wall clock. Every read is bounded: a coordinator that stops answering fails the pod in one
line at the barrier's timeout instead of holding it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from steps.errors import BenchError
from steps.load.coordinator import COORDINATOR_PORT, MAX_LINE

__all__ = ["CLOCK_SAMPLES", "NO_OFFSET", "ClockOffset", "PodLink", "parse_address"]

CLOCK_SAMPLES = 32
#: Extra time a barrier's answer may take past its timeout (the coordinator's own timer).
_ANSWER_GRACE_S = 10.0


@dataclass(frozen=True)
class ClockOffset:
    """Coordinator clock minus this pod's wall clock (ns), and the round trip it came from."""

    offset_ns: int
    rtt_ns: int


#: One pod: its own clock is the reference.
NO_OFFSET = ClockOffset(0, 0)


def parse_address(text: str) -> tuple[str, int]:
    """`HOST` or `HOST:PORT` (the port defaults to COORDINATOR_PORT); ValueError names it."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, COORDINATOR_PORT
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator {text!r}: expected HOST or HOST:PORT")
    return host, int(port)


class PodLink:
    """The connection of load pod `pod` (of `pods`) to the coordinator at `address`."""

    def __init__(self, address: tuple[str, int], pod: int, pods: int, connect_s: float) -> None:
        self.pod = pod
        self._buf = b""
        deadline = time.monotonic() + connect_s
        while True:  # the coordinator may still be starting: retry until connect_s
            try:
                self._sock = socket.create_connection(address, timeout=5)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"load pod {pod}: cannot reach the coordinator at {address[0]}:"
                        f"{address[1]} within {connect_s:g} s ({exc.strerror or exc})"
                    ) from None
                time.sleep(1.0)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            welcome = self._call({"op": "hello", "pod": pod, "pods": pods}, 30.0)
        except BenchError:
            self._sock.close()
            raise
        self.run_id = str(welcome["run_id"])

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise BenchError(f"load pod {self.pod}: coordinator connection lost ({exc})") from None

    def _read(self, timeout_s: float) -> dict[str, Any]:
        self._sock.settimeout(timeout_s)
        while b"\n" not in self._buf:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise BenchError(
                    f"load pod {self.pod}: no answer from the coordinator within {timeout_s:g} s"
                ) from None
            except OSError as exc:
                raise BenchError(
                    f"load pod {self.pod}: coordinator connection lost ({exc})"
                ) from None
            if not data:
                raise BenchError(f"load pod {self.pod}: the coordinator closed the connection")
            self._buf += data
            if len(self._buf) > MAX_LINE:
                raise BenchError(f"load pod {self.pod}: coordinator line over {MAX_LINE} bytes")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            msg: dict[str, Any] = json.loads(line)
        except ValueError:
            raise BenchError(f"load pod {self.pod}: coordinator sent {line[:80]!r}") from None
        if msg.get("op") == "error":
            raise BenchError(f"load pod {self.pod}: coordinator: {msg.get('message')}")
        return msg

    def _call(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self._send(msg)
        return self._read(timeout_s)

    def measure_clock(self) -> ClockOffset:
        """Offset against the coordinator from the exchange with the shortest round trip."""
        best: ClockOffset | None = None
        for _ in range(CLOCK_SAMPLES):
            t1 = time.time_ns()
            t2 = int(self._call({"op": "clock"}, 10.0)["wall_ns"])
            t3 = time.time_ns()
            sample = ClockOffset(t2 - (t1 + t3) // 2, t3 - t1)
            if best is None or sample.rtt_ns < best.rtt_ns:
                best = sample
        assert best is not None
        return best

    def barrier(self, name: str, value: Any, timeout_s: float) -> tuple[int, list[Any]]:
        """Wait until every pod reached `name`; (start on the coordinator clock, every value)."""
        msg = self._call(
            {"op": "barrier", "name": name, "value": value, "timeout_s": timeout_s},
            timeout_s + _ANSWER_GRACE_S,
        )
        if msg.get("op") != "go" or msg.get("name") != name:
            raise BenchError(f"load pod {self.pod}: coordinator answered {msg} to {name!r}")
        return int(msg["start_wall_ns"]), list(msg["values"])

    def finish(self) -> None:
        """Say this pod is done (the coordinator ends once every pod did) and close."""
        with contextlib.suppress(BenchError):  # coordinator gone: nothing waits for this pod
            self._send({"op": "done"})
        self._sock.close()

    def close(self) -> None:
        """Close without saying done (the coordinator then fails the run, naming this pod)."""
        self._sock.close()
