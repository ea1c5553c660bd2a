"""Time limits: each measured as Argo v4.0.5 does (see workflows/time_budget.py)."""

from __future__ import annotations

import pytest

from tests.helpers.argo.rendered import default_template, limit_seconds
from workflows.argo_expr import substitute
from workflows.time_budget import PENDING_ALLOWANCE_S

_PARAMS = [
    {"readiness_timeout": "600", "duration": "300"},
    {"readiness_timeout": "30", "duration": "3600"},
    {"readiness_timeout": "7200", "duration": "20"},
]


@pytest.mark.parametrize(
    "values", _PARAMS, ids=lambda v: f"{v['readiness_timeout']}/{v['duration']}"
)
def test_retry_budget_lets_every_retry_happen(values: dict[str, str]) -> None:
    """maxDuration counts from the first attempt's start: it must hold limit + 1 attempts (each
    up to its Pending allowance and its activeDeadlineSeconds) and the backoffs between them,
    or the retries the strategy promises never happen (5m under a 600 s readiness wait)."""
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    retried = [t for t in default_template()["spec"]["templates"] if "retryStrategy" in t]
    assert {t["name"] for t in retried} == {"readiness", "tokenizer", "report"}
    for template in retried:
        retry = template["retryStrategy"]
        limit = int(retry["limit"])
        backoff = retry["backoff"]
        waits = sum(
            limit_seconds(backoff["duration"], scope) * int(backoff["factor"]) ** n
            for n in range(limit)
        )
        attempt = limit_seconds(template["activeDeadlineSeconds"], scope) + PENDING_ALLOWANCE_S
        assert limit >= 1
        assert limit_seconds(backoff["maxDuration"], scope) >= (limit + 1) * attempt + waits, (
            template["name"]
        )


@pytest.mark.parametrize(
    "values", _PARAMS, ids=lambda v: f"{v['readiness_timeout']}/{v['duration']}"
)
def test_timeout_bounds_pending_on_every_step(values: dict[str, str]) -> None:
    """Only the template `timeout` covers a Pending pod (an unschedulable load holding the
    endpoint's mutex). It counts from the node's start, so it must exceed the step's
    activeDeadlineSeconds by the Pending allowance, cover all attempts of a retried step (its
    node is the retry node), and stay bounded."""
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    for template in default_template()["spec"]["templates"]:
        if "container" not in template:
            assert "timeout" not in template  # Argo refuses timeout on a dag template
            continue
        name = template["name"]
        timeout = substitute(template["timeout"], scope)
        assert timeout[-1] == "s" and timeout[:-1].isdigit(), name  # Argo: not a bare number
        deadline = limit_seconds(template["activeDeadlineSeconds"], scope)
        retry = template.get("retryStrategy")
        budget = limit_seconds(retry["backoff"]["maxDuration"], scope) if retry else None
        expected = budget if budget is not None else deadline + PENDING_ALLOWANCE_S
        assert limit_seconds(timeout, scope) == expected, name
    assert 0 < PENDING_ALLOWANCE_S <= 1800
