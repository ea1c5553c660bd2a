"""The start coordinator of a load spread over several pods (`python -m steps.load coordinate`).

Why a coordinator: load pods start at different moments (scheduling, image pulls, prompt
building) on nodes whose clocks differ by up to milliseconds (chrony), yet they must send ONE
schedule from one instant. On Argo the coordinator is a daemon task; each load pod gets its IP
from Argo (`{{tasks.load-coordinator.ip}}`) and keeps one TCP connection to it for the whole run.

Protocol: JSON lines over that connection (pod -> coordinator, coordinator's answer):
    {"op": "hello", "pod": i, "pods": N}            -> {"op": "welcome", "run_id": ...}
    {"op": "clock"}                                 -> {"op": "clock", "wall_ns": <coordinator>}
    {"op": "barrier", "name": B, "value": v, "timeout_s": s}
        -> once every pod sent barrier B: {"op": "go", "start_wall_ns": <coordinator clock>,
           "values": [v of pod 0, ..., v of pod N-1]}
    {"op": "done"}                                  -> (nothing; the pod is finished)
Any refusal or failure is {"op": "error", "message": <one line>} to every pod still connected,
and the coordinator exits 1 with the same line: a pod that does not reach a barrier within the
first arrival's `timeout_s`, or whose connection drops before it said `done`, is named there; the
run never goes on with a hole in the schedule. The clock exchange is what the pods measure their
offset with (steps.load.pod_link). `start_wall_ns` is `lead` after the last pod reached the
barrier, so every pod has the go message before the instant it names.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from steps.errors import BenchError

__all__ = ["COORDINATOR_PORT", "MAX_LINE", "serve"]

log = logging.getLogger(__name__)

#: The port the coordinator listens on (the load pods' `--coordinator HOST` defaults to it).
COORDINATOR_PORT = 7878
#: Longest protocol line either side accepts (a barrier's values: N numbers).
MAX_LINE = 1 << 20


@dataclass
class _Barrier:
    values: dict[int, Any] = field(default_factory=dict)
    deadline: float = 0.0
    timer: asyncio.TimerHandle | None = None


class _Coordinator:
    """State of one coordinated run: which pods are connected, done, and at which barrier."""

    def __init__(self, pods: int, run_id: str, lead_s: float) -> None:
        self.pods = pods
        self.run_id = run_id
        self.lead_s = lead_s
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.connections: set[asyncio.StreamWriter] = set()  # closed when the run ends
        self.done: set[int] = set()
        self.barriers: dict[str, _Barrier] = {}
        self.finished: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def fail(self, message: str) -> None:
        """Tell every connected pod, then end the coordinator with `message`."""
        if self.finished.done():
            return
        for writer in self.writers.values():
            _send(writer, {"op": "error", "message": message})
        self.finished.set_result(message)

    def _check_done(self) -> None:
        if len(self.done) == self.pods and not self.finished.done():
            self.finished.set_result(None)

    def barrier(self, pod: int, name: str, value: Any, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        state = self.barriers.setdefault(name, _Barrier())
        if not state.values:
            state.deadline = loop.time() + timeout_s
            state.timer = loop.call_at(state.deadline, self._barrier_timeout, name, timeout_s)
        state.values[pod] = value
        if len(state.values) < self.pods:
            return
        if state.timer is not None:
            state.timer.cancel()
        start = time.time_ns() + round(self.lead_s * 1e9)
        values = [state.values[p] for p in range(self.pods)]
        log.info("barrier %s: every pod there; start at %d", name, start)
        for writer in self.writers.values():
            _send(writer, {"op": "go", "name": name, "start_wall_ns": start, "values": values})

    def _barrier_timeout(self, name: str, timeout_s: float) -> None:
        missing = sorted(set(range(self.pods)) - set(self.barriers[name].values))
        self.fail(f"load pod(s) {_listed(missing)} did not reach {name!r} within {timeout_s:g} s")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        pod: int | None = None
        try:
            while not self.finished.done():
                line = await reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                op = msg.get("op")
                if op == "hello":
                    pod = self._hello(msg, writer)
                    if pod is None:
                        break
                elif op == "clock":
                    _send(writer, {"op": "clock", "wall_ns": time.time_ns()})
                elif pod is None:
                    self.fail(f"a load pod sent {op!r} before hello")
                elif op == "barrier":
                    self.barrier(pod, str(msg["name"]), msg.get("value"), float(msg["timeout_s"]))
                elif op == "done":
                    self.done.add(pod)
                    self._check_done()
                else:
                    self.fail(f"load pod {pod} sent an unknown op {op!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.fail(f"load pod {pod if pod is not None else '?'} sent a malformed line: {exc}")
        except (ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        if pod is not None and pod not in self.done and not self.finished.done():
            self.writers.pop(pod, None)
            self.fail(f"load pod {pod} disconnected before it finished")

    def _hello(self, msg: dict[str, Any], writer: asyncio.StreamWriter) -> int | None:
        pod, pods = msg.get("pod"), msg.get("pods")
        if pods != self.pods or not isinstance(pod, int) or not 0 <= pod < self.pods:
            _send(writer, {"op": "error", "message": f"coordinator expects --load-pods "
                           f"{self.pods}; got pod {pod!r} of {pods!r}"})  # fmt: skip
            return None
        if pod in self.writers:
            message = f"two load pods claim --pod-index {pod}"
            _send(writer, {"op": "error", "message": message})
            self.fail(message)
            return None
        self.writers[pod] = writer
        _send(writer, {"op": "welcome", "run_id": self.run_id})
        log.info("load pod %d connected (%d of %d)", pod, len(self.writers), self.pods)
        return pod


def _send(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(msg).encode() + b"\n")


def _listed(pods: list[int]) -> str:
    return ", ".join(str(p) for p in pods)


async def _serve(port: int, pods: int, run_id: str, lead_s: float, deadline_s: float) -> None:
    coordinator = _Coordinator(pods, run_id, lead_s)
    server = await asyncio.start_server(coordinator.handle, port=port, limit=MAX_LINE)
    log.info("coordinating %d load pods of run %s on port %d", pods, run_id, port)
    try:
        async with server:
            async with asyncio.timeout(deadline_s):
                error = await coordinator.finished
    except TimeoutError:
        connected = sorted(coordinator.writers)
        error = (
            f"load pods did not finish within {deadline_s:g} s (connected: "
            f"{_listed(connected) or 'none'}; done: {_listed(sorted(coordinator.done)) or 'none'})"
        )
    await asyncio.sleep(0.2)  # the last lines sent reach the pods before the sockets close
    for writer in coordinator.connections:
        writer.close()
    if error is not None:
        raise BenchError(error)
    log.info("every load pod finished")


def serve(port: int, pods: int, run_id: str, lead_s: float, deadline_s: float) -> None:
    """Coordinate `pods` load pods until all are done; BenchError (exit 1) names what failed."""
    asyncio.run(_serve(port, pods, run_id, lead_s, deadline_s))
