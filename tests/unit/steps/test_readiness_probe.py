"""Readiness probe: backoff schedule (/v1/models parsing: test_served_models.py; probes against
hostile servers: tests/integration/test_http_limits.py)."""

from __future__ import annotations

import itertools

from steps.readiness.probe import poll_delays


def test_poll_delays_start_small_double_and_cap_at_interval() -> None:
    assert list(itertools.islice(poll_delays(8.0), 6)) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
