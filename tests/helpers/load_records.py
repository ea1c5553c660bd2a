"""Load-step records of exactly known requests, appended through the worker's own RecordBuffer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from steps.load.stream_request import RequestOutcome, RequestSpec
from steps.load.writer import RecordBuffer

__all__ = ["T0", "add_record"]

#: A t0 (monotonic ns) for record buffers: the record times below are this plus small offsets.
T0 = 10_000_000_000


def add_record(
    buf: RecordBuffer, index: int, tokens: list[int] | None, status: str = "ok", **fields: Any
) -> None:
    """Append request `index` of stage 0: sent 1 ms x index + 500 ns after T0, two chunks at
    +50 and +60 ms carrying `tokens`; any `status` but "ok" is an HTTP 503 without chunks.
    `fields` override the outcome's other fields (a server's values, an error text)."""
    ok = status == "ok"
    sent = T0 + 1_000_000 * index + 500
    outcome = RequestOutcome(
        spec=RequestSpec(
            stage=0, index=index, offset_ns=0, body=b"", input_tokens=512, output_tokens=128
        ),
        scheduled_ns=T0 + 1_000_000 * index,
        sent_ns=sent,
        end_ns=sent + 9_000_000,
        chunk_ns=[sent + 50_000_000, sent + 60_000_000] if ok else [],
        chunk_tokens=tokens,
        prompt_tokens=512,
        prompt_tokens_source="server",
        output_tokens=2 if ok else None,
        output_tokens_source="server" if ok else None,
        mismatch=None,
        status=status,
        http_status=200 if ok else 503,
        error=None if ok else "HTTP 503: busy",
    )
    buf.add(replace(outcome, **fields))
