"""Time limits: each measured as Argo v4.0.5 does (see workflows/time_budget.py), for the
template of every scenario."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.argo.rendered import default_template, limit_seconds, template_named
from workflows.argo_expr import substitute
from workflows.scenarios import ScenarioName
from workflows.step_templates import LOAD_DEADLINE_MARGIN_S
from workflows.time_budget import PENDING_ALLOWANCE_S

#: (scenario, the parameter values the limits read); each staged one with drains and stage
#: specs of one stage, many, and decimal rates.
_PARAMS: list[tuple[ScenarioName, dict[str, str]]] = [
    (ScenarioName.baseline, {"readiness_timeout": "600", "duration": "300"}),
    (ScenarioName.baseline, {"readiness_timeout": "30", "duration": "3600"}),
    (ScenarioName.baseline, {"readiness_timeout": "7200", "duration": "20"}),
    (
        ScenarioName.saturation,
        {
            "readiness_timeout": "600",
            "stages": "5x180,10x180,20x180,40x180",
            "drain_timeout": "120",
        },
    ),
    (ScenarioName.saturation, {"readiness_timeout": "30", "stages": "2.5x4", "drain_timeout": "0"}),
    (
        ScenarioName.production,
        {"readiness_timeout": "600", "stages": "15x600", "drain_timeout": "2100"},
    ),
    (
        ScenarioName.config,
        {"readiness_timeout": "60", "stages": "1x3600,2x3600", "drain_timeout": "5"},
    ),
]


def _id(case: tuple[ScenarioName, dict[str, str]]) -> str:
    return f"{case[0].value}:" + "/".join(case[1].values())


def _scope(values: dict[str, str]) -> dict[str, str]:
    return {f"inputs.parameters.{k}": v for k, v in values.items()}


@pytest.mark.parametrize("case", _PARAMS, ids=_id)
def test_retry_budget_lets_every_retry_happen(case: tuple[ScenarioName, dict[str, str]]) -> None:
    """maxDuration counts from the first attempt's start: it must hold limit + 1 attempts (each
    up to its Pending allowance and its activeDeadlineSeconds) and the backoffs between them,
    or the retries the strategy promises never happen (5m under a 600 s readiness wait)."""
    scenario, values = case
    scope = _scope(values)
    templates = default_template(scenario=scenario)["spec"]["templates"]
    retried = [t for t in templates if "retryStrategy" in t]
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


@pytest.mark.parametrize("load_pods", [1, 3])
@pytest.mark.parametrize("case", _PARAMS, ids=_id)
def test_timeout_bounds_pending_on_every_step(
    case: tuple[ScenarioName, dict[str, str]], load_pods: int
) -> None:
    """Only the template `timeout` covers a Pending pod (an unschedulable load holding the
    endpoint's mutex). It counts from the node's start, so it must exceed the step's
    activeDeadlineSeconds by the Pending allowance, cover all attempts of a retried step (its
    node is the retry node), and stay bounded."""
    scenario, values = case
    scope = _scope(values)
    for template in default_template(scenario=scenario, load_pods=load_pods)["spec"]["templates"]:
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


def _send_and_drain_s(values: dict[str, Any]) -> float:
    """What the load step may take at most: every stage's send window and its drain."""
    if "duration" in values:
        return float(values["duration"]) + 120  # the baseline: one stage, the default drain
    stages = [float(s.split("x")[1]) for s in values["stages"].split(",")]
    return sum(stages) + len(stages) * float(values["drain_timeout"])


@pytest.mark.parametrize("case", _PARAMS, ids=_id)
def test_load_deadline_covers_every_stage_and_its_drain(
    case: tuple[ScenarioName, dict[str, str]],
) -> None:
    """The load pod's activeDeadlineSeconds is the sum of the stages' seconds and drains plus
    the margin (prompt building, start-up): Argo kills the pod past it, so a deadline from one
    stage's duration would cut a four-stage run in its second stage."""
    scenario, values = case
    load = template_named(default_template(scenario=scenario), "load")
    deadline = limit_seconds(load["activeDeadlineSeconds"], _scope(values))
    assert deadline >= _send_and_drain_s(values) + 60
    assert deadline <= _send_and_drain_s(values) + LOAD_DEADLINE_MARGIN_S


@pytest.mark.parametrize("case", _PARAMS, ids=_id)
def test_coordinator_outlives_every_load_pod(case: tuple[ScenarioName, dict[str, str]]) -> None:
    """The start coordinator (a daemon) starts before the load pods are scheduled and must
    answer their last barrier: its deadline covers a load pod's whole timeout (Pending
    included) plus the pods' --start-timeout (600 s)."""
    scenario, values = case
    template = default_template(scenario=scenario, load_pods=3)
    scope = _scope(values)
    load = template_named(template, "load")
    coordinator = template_named(template, "coordinator")
    assert coordinator["daemon"] is True
    load_timeout = limit_seconds(load["timeout"], scope)
    assert limit_seconds(coordinator["activeDeadlineSeconds"], scope) >= load_timeout + 600
