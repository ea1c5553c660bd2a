"""The nightly CronWorkflow: runs the installed WorkflowTemplate as a regression check.

It references the template (`workflowTemplateRef`), so every run uses the CURRENT template, and
passes every parameter explicitly, like `submit`, so a UI resubmit can override any of them.
`concurrencyPolicy: Forbid` only guards the cron's own runs; the template's per-target mutex
keeps cron, CLI and UI runs apart. Labels on the CronWorkflow object stay there: the Workflows it
starts get theirs from `workflowMetadata` (so `trigger=cron` selects the nightly runs).

The schedule is checked against the `schedules` pattern of the vendored CronWorkflow CRD of the
oldest Argo release the manifests are validated against (workflows.argo_crd): the API server
enforces it, and v4.0.5's accepts only numeric cron fields (`MON-FRI` is refused there), so a
schedule that passes here is accepted by every release from it on.
"""

from __future__ import annotations

import re
from typing import Any

from hera.workflows import CronWorkflow as HeraCronWorkflow
from hera.workflows import Parameter
from hera.workflows import models as m

from steps.errors import UsageError
from workflows.argo_crd import OLDEST_CRD_VERSION, cron_schedule_pattern
from workflows.options import TemplateOptions
from workflows.params import BaselineParams

__all__ = ["build_cron", "check_schedule"]

#: Labels of every Workflow the CronWorkflow starts (and of the CronWorkflow itself).
CRON_LABELS = {"trigger": "cron"}


def check_schedule(schedule: str) -> str:
    """`schedule` when the CronWorkflow CRD accepts it; otherwise a one-line UsageError."""
    if re.fullmatch(cron_schedule_pattern(OLDEST_CRD_VERSION), schedule) is None:
        raise UsageError(
            f"--cron: {schedule!r} is not a schedule the CronWorkflow CRD of Argo "
            f"{OLDEST_CRD_VERSION} accepts (its API server would refuse it): use five numeric "
            "fields (0-6 for days, 1-12 for months: 1-5, not MON-FRI), a macro such as @daily, "
            "or @every <duration>"
        )
    return schedule


class CronWorkflow(HeraCronWorkflow):
    """Hera's CronWorkflow whose spec-level `workflowMetadata` gives its runs CRON_LABELS (the
    class keeps hera's name: hera takes the object's `kind` from it).

    Argo copies `CronWorkflowSpec.workflowMetadata` onto each Workflow it creates
    (workflow/common/convert.go `toWorkflow`); hera 7.1's `workflow_metadata` argument sets the
    WorkflowSpec's field of that name instead, so the built model gets it here.
    """

    def build(self) -> Any:
        model = super().build()
        model.spec.workflow_metadata = m.ObjectMeta(labels=dict(CRON_LABELS))
        return model


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
        schedules=[check_schedule(schedule)],
        timezone=timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=600,
        successful_jobs_history_limit=7,
        failed_jobs_history_limit=7,
        workflow_template_ref=m.WorkflowTemplateRef(name=options.name),
        arguments=[Parameter(name=k, value=v) for k, v in nightly.to_arguments().items()],
        labels=dict(CRON_LABELS),
    )
