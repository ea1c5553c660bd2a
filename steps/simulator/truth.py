"""Server-side ground truth: what the simulator actually did for each generation request.

Tests and the benchmark compare the load step's client-side measurements with these records
(`GET /debug/truth`, cleared by `POST /debug/truth/reset`). All times are `time.time_ns()`
(epoch ns) because the client runs in another process and only the wall clock is shared.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TruthRecord", "TruthStore"]


class TruthRecord:
    """One generation request as the server saw it; mutated while the response streams."""

    __slots__ = (
        "arrival_wall_ns",
        "chunk_tokens",
        "chunk_wall_ns",
        "completion_tokens",
        "fault",
        "http_status",
        "prompt_tokens",
        "request_id",
    )

    def __init__(self, request_id: str | None, arrival_wall_ns: int) -> None:
        self.request_id = request_id
        #: time.time_ns() when the request head was parsed.
        self.arrival_wall_ns = arrival_wall_ns
        #: time.time_ns() just before each content chunk (or the one non-streamed body) was written.
        self.chunk_wall_ns: list[int] = []
        #: tokens carried by each of those chunks (several with --tokens-per-chunk > 1).
        self.chunk_tokens: list[int] = []
        #: 0 until the prompt was parsed (a 400 may never get there).
        self.prompt_tokens = 0
        #: tokens actually sent, so a disconnected stream counts only what left the server.
        self.completion_tokens = 0
        self.http_status = 0
        #: the injected fault's name (see latency.Fault), "client_closed", or None.
        self.fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /debug/truth` (steps/CONTRACTS.md, "Simulator ground truth")."""
        return {name: getattr(self, name) for name in self.__slots__}


class TruthStore:
    """Records in arrival order; unbounded by design (reset between runs)."""

    def __init__(self) -> None:
        self._records: list[TruthRecord] = []

    def add(self, request_id: str | None, arrival_wall_ns: int) -> TruthRecord:
        """Start recording a request that just arrived."""
        record = TruthRecord(request_id, arrival_wall_ns)
        self._records.append(record)
        return record

    def reset(self) -> int:
        """Forget every record (in-flight ones keep streaming, unrecorded); returns how many."""
        count = len(self._records)
        self._records = []
        return count

    def to_json(self) -> bytes:
        """`{"requests": [...]}` as UTF-8 JSON."""
        return json.dumps({"requests": [r.as_dict() for r in self._records]}).encode()
