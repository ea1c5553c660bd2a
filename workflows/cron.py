"""The nightly CronWorkflow: runs the installed WorkflowTemplate as a regression check.

It references the template (`workflowTemplateRef`), so every run uses the CURRENT template, and
passes every parameter explicitly, like `submit`, so a UI resubmit can override any of them.
`concurrencyPolicy: Forbid` only guards the cron's own runs; the template's per-target mutex
keeps cron, CLI and UI runs apart.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from workflows.options import TemplateOptions
from workflows.params import BaselineParams

__all__ = ["build_cron"]


def build_cron(
    params: BaselineParams,
    options: TemplateOptions,
    schedule: str,
    timezone: str = "UTC",
) -> CronWorkflow:
    """A nightly regression run of the template; a breach fails the run (goes red)."""
    nightly = params.model_copy(update={"fail_on_breach": True})
    return CronWorkflow(
        name=f"{options.name}-nightly",
        namespace=options.namespace,
        schedules=[schedule],
        timezone=timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=600,
        successful_jobs_history_limit=7,
        failed_jobs_history_limit=7,
        workflow_template_ref=m.WorkflowTemplateRef(name=options.name),
        arguments=[Parameter(name=k, value=v) for k, v in nightly.to_arguments().items()],
        labels={"trigger": "cron"},
    )
