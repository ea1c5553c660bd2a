"""The nightly CronWorkflow: labels reach its runs, every parameter explicit, fails on breach."""

from __future__ import annotations

from workflows.cron import build_cron
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_workflow


def test_cron_labels_reach_the_workflows_it_starts() -> None:
    spec = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * *").to_dict()["spec"]
    assert spec["workflowMetadata"]["labels"] == {"trigger": "cron"}
    assert build_workflow(BaselineParams(), TemplateOptions()).to_dict()["metadata"]["labels"] == {
        "trigger": "cli"
    }


def test_cron_passes_every_parameter_and_fails_on_breach() -> None:
    cron = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * *", "Europe/Paris").to_dict()
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["timezone"] == "Europe/Paris"
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": "llm-baseline"}
    values = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert values["fail_on_breach"] == "true"
    assert set(values) == set(BaselineParams().knobs)
