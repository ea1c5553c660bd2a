"""Servers that accept a request and never complete an answer, for wall-clock deadline tests.

Two ways to never answer, both needed: `silent` sends nothing; `drip` sends a response head a
byte every 50 ms (10,000 bytes of header name, so it does not end within any test's time), which
a per-socket-read timeout never catches: only a deadline on the whole call does.
"""

from __future__ import annotations

import pytest

from tests.fakes.hostile import drip, hang

__all__ = ["NEVER_ANSWERING"]

_DRIPPED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X" * 10_000

#: `pytest.mark.parametrize` values: one `tests.fakes.hostile` behaviour each, ids silent/drip.
NEVER_ANSWERING = [
    pytest.param(hang(), id="silent"),
    pytest.param(drip(_DRIPPED_HEAD, interval_s=0.05), id="drip"),
]
