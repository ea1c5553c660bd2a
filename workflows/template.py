"""The baseline WorkflowTemplate: readiness -> tokenizer -> load -> aggregate -> report (a
real-data scenario adds readiness -> dataset -> load beside the tokenizer).

Built by a function from the typed knobs and install options; nothing is built at import time.
Each step's Container template comes from workflows.step_templates; this module states the
workflow-wide settings and the DAG. The same dict goes to Argo (`install`, `submit`) and to the
local runner (`run`), so the local run exercises this manifest.

Argo facts the DAG relies on (Argo v4.0.5, the schema hera 7.1 is generated from):
- DAG phase is taken from the leaf tasks (dag.go assessDAGPhase), so a failed `load` whose
  failure `aggregate` depends on explicitly (`load.Succeeded || load.Failed`) does not fail the
  workflow when report succeeds: a run where some requests failed is still measured and
  reported, and the report fails its verdict on the load's exit code and the error rate (exit 3
  with fail_on_breach: the nightly run goes red). A load that wrote nothing fails aggregate
  (optional inputs, one line), the report is omitted and inherits the failure: the run fails.
- `{{tasks.load.exitCode}}` exists only once the load's main container has exited; a task whose
  arguments or `when` name it is requeued until it does, i.e. forever for a load that never ran
  (Pending past its timeout, a failed init container), holding the mutex until the workflow
  deadline (dag.go resolveDependencyReferences). So aggregate is not gated on it (a `when`):
  a load that wrote nothing fails aggregate in one line instead. Only the report reads it,
  and only after aggregate succeeded on the load's records.
- Workflow-level `activeDeadlineSeconds` is a plain integer (no expression tags).
- Mutex names may contain `/` (the lock key is split in three at most), so the endpoint URL
  itself names the per-target mutex.
"""

from __future__ import annotations

from typing import Any, cast

from hera.workflows import DAG, Artifact, Container, Parameter, Task, Workflow, WorkflowTemplate
from hera.workflows import models as m

from workflows.load_fanout import coordinator_address
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.pod_security import executor_pod_spec_patch, pod_security_context
from workflows.scenarios import SCENARIOS
from workflows.step_templates import (
    AGGREGATE_ARTIFACTS,
    AGGREGATE_INPUTS,
    DATASET_INPUTS,
    LOAD_EXIT_CODE,
    REPORT_INPUTS,
    SERVER_METRICS_ARTIFACT,
    TOKENIZER_INPUTS,
    EndpointAccess,
    aggregate_template,
    check_load_fits,
    coordinator_inputs,
    dataset_template,
    endpoint_access,
    load_coordinator_template,
    load_inputs,
    load_template,
    probe_inputs,
    probe_template,
    readiness_inputs,
    readiness_template,
    report_template,
    tokenizer_template,
)

__all__ = ["DAG_NAME", "build_template", "build_workflow", "workflow_arguments"]

DAG_NAME = "baseline"


def workflow_arguments(params: BaselineParams) -> list[Parameter]:
    """Every knob as a workflow parameter with its value, description and enum."""
    enums = BaselineParams.enums()
    descriptions = BaselineParams.descriptions()
    # target_labels is baked into the load pod's affinity at install time: pin the UI's value
    # to it so a UI edit cannot silently diverge from the affinity.
    enums["target_labels"] = [params.target_labels]
    return [
        Parameter(name=name, value=value, description=descriptions[name], enum=enums.get(name))
        for name, value in params.to_arguments().items()
    ]


def _workflow_template(
    params: BaselineParams, options: TemplateOptions, endpoint: EndpointAccess
) -> WorkflowTemplate:
    """The workflow-wide settings: parameters, pod defaults, mutex, deadlines, GC, volumes."""
    return WorkflowTemplate(
        name=options.name,
        namespace=options.namespace,
        entrypoint=DAG_NAME,
        labels={"app.kubernetes.io/name": "llm-baseline-bench"},
        arguments=workflow_arguments(params),
        service_account_name=options.service_account,
        active_deadline_seconds=options.workflow_deadline_s,
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        ttl_strategy=m.TTLStrategy(seconds_after_completion=options.ttl_after_completion_s),
        synchronization=m.Synchronization(
            mutexes=[m.Mutex(name="llm-baseline-{{workflow.parameters.base_url}}")]
        ),
        artifact_repository_ref=(
            m.ArtifactRepositoryRef(
                config_map=options.artifact_repository_configmap,
                key=options.artifact_repository_key,
            )
            if options.artifact_repository_configmap
            else None
        ),
        pod_metadata=m.Metadata(labels={"app.kubernetes.io/component": "benchmark"}),
        security_context=m.PodSecurityContext(**pod_security_context()),
        pod_spec_patch=executor_pod_spec_patch(),
        volumes=endpoint.volumes,
    )


def build_template(params: BaselineParams, options: TemplateOptions) -> WorkflowTemplate:
    """The WorkflowTemplate: defaults = `params`, cluster settings = `options`."""
    check_load_fits(params, options)
    endpoint = endpoint_access(options)
    with _workflow_template(params, options, endpoint) as template:
        readiness = readiness_template(params, options, endpoint)
        tokenizer = tokenizer_template(options)
        load = load_template(params, options, endpoint)
        aggregate = aggregate_template(options)
        report = report_template(options)
        real_data = SCENARIOS[params.scenario].real_data
        conversations = dataset_template(options) if real_data else None
        swept = SCENARIOS[params.scenario].swept
        probe = probe_template(params, options, endpoint) if swept else None

        pods = options.load_pods
        coordinator = load_coordinator_template(params, options) if pods > 1 else None

        with DAG(name=DAG_NAME):
            ready = _task(readiness, arguments=_pass_through(readiness_inputs(params)))
            tok = _task(tokenizer, arguments=_pass_through(TOKENIZER_INPUTS))
            fetched = (
                _task(conversations, arguments=_pass_through(DATASET_INPUTS))
                if conversations is not None
                else None
            )
            load_parameters = _pass_through(load_inputs(params))
            before_load = tok
            if probe is not None:
                # The sweep: a probe finds the saturation rate; its output parameter `stages`
                # is the load's --stages, and so also its time budget (load-staged).
                before_load = _task(
                    probe,
                    arguments=[
                        *_pass_through(probe_inputs(params)),
                        tok.get_artifact("tokenizer"),
                    ],
                )
                tok >> before_load
            load_arguments = [
                *_from_probe(load_parameters, probe),
                tok.get_artifact("tokenizer"),
                *([fetched.get_artifact("dataset")] if fetched is not None else []),
            ]
            run = _load_task(load, load_arguments, coordinator, probe, before_load, params, pods)
            summary, verdict = _measure_tasks(
                aggregate, report, run, fanned=coordinator is not None
            )
            # hera types `>>` as Task | list[Task]; with a Task on the left it is the Task.
            ready >> tok
            before_load >> run
            if fetched is not None:  # the conversations, fetched while the tokenizer is
                ready >> fetched >> run  # type: ignore[operator]
            summary >> verdict  # aggregate itself: on load Succeeded or Failed (its depends)
    return template


def _load_task(
    load: Container,
    load_arguments: list[Any],
    coordinator: Container | None,
    probe: Container | None,
    before_load: Task,
    params: BaselineParams,
    pods: int,
) -> Task:
    """The load task: one pod, or `pods` pods behind their coordinator task."""
    if coordinator is None:
        return _task(load, arguments=load_arguments)
    # Several pods: workflows.load_fanout.
    coordinate = _task(
        coordinator,
        arguments=_from_probe(_pass_through(coordinator_inputs(params)), probe),
    )
    run = _task(
        load,
        with_sequence=m.Sequence(count=m.IntOrString(str(pods))),
        arguments=[
            *load_arguments,
            Parameter(name="pod_index", value="{{item}}"),
            Parameter(name="coordinator", value=coordinator_address()),
        ],
    )
    before_load >> coordinate >> run  # type: ignore[operator]
    return run


def _measure_tasks(
    aggregate: Container, report: Container, run: Task, fanned: bool
) -> tuple[Task, Task]:
    """The aggregate and report tasks after the load `run` (`fanned`: several load pods)."""
    # Load exit 1 = some requests failed, records complete: still measured. No `when` on
    # its exitCode: a load that never ran has none and Argo would requeue forever.
    # Several pods: their files come by key (workflows.load_fanout), and the group of
    # load pods has no exitCode: "" = no check, `complete` and the error rate judge.
    summary = _task(
        aggregate,
        depends=f"{run.name}.Succeeded || {run.name}.Failed",
        arguments=[
            *_pass_through(AGGREGATE_INPUTS),
            *(_optional_from(run, name) for name in AGGREGATE_ARTIFACTS if not fanned),
        ],
    )
    # Only after aggregate succeeded on the load's records: the exit code exists.
    verdict = _task(
        report,
        arguments=[
            *_pass_through(REPORT_INPUTS),
            Parameter(
                name=LOAD_EXIT_CODE,
                value="{{tasks.load.exitCode}}" if not fanned else "",
            ),
            summary.get_artifact("summary"),
            *(
                [
                    run.get_artifact("records"),
                    run.get_artifact("run"),
                    _optional_from(run, SERVER_METRICS_ARTIFACT),
                ]
                if not fanned
                else []
            ),
        ],
    )
    return summary, verdict


def _from_probe(parameters: list[Parameter], probe: Container | None) -> list[Parameter]:
    """`parameters` with `stages` fed from the sweep probe's output parameter (when there is a
    probe): the stages the load runs, and the ones its deadline is computed from."""
    if probe is None:
        return parameters
    return [
        Parameter(name="stages", value="{{tasks.probe.outputs.parameters.stages}}")
        if p.name == "stages"
        else p
        for p in parameters
    ]


def _task(template: Container, **fields: Any) -> Task:
    """A DAG task named after its template, as Hera's own template calls name it (every step
    template is named by `step_templates._step`)."""
    return Task(name=cast(str, template.name), template=template, **fields)


def _optional_from(task: Task, name: str) -> Artifact:
    """`task`'s output artifact as an optional argument: absent when the task wrote none."""
    return Artifact(
        name=name, from_=f"{{{{tasks.{task.name}.outputs.artifacts.{name}}}}}", optional=True
    )


def _pass_through(names: tuple[str, ...]) -> list[Parameter]:
    """Feed each input parameter from the workflow parameter of the same name."""
    return [Parameter(name=n, value="{{workflow.parameters." + n + "}}") for n in names]


def build_workflow(params: BaselineParams, options: TemplateOptions) -> Workflow:
    """A Workflow run of the installed template with EVERY parameter explicit.

    Argo's resubmit/retry UI can only override parameters the run recorded (argo #12923), so
    the run carries all of them, not only those that differ from the template's defaults.
    """
    return Workflow(
        generate_name=f"{options.name}-",
        namespace=options.namespace,
        workflow_template_ref=m.WorkflowTemplateRef(name=options.name),
        arguments=[Parameter(name=k, value=v) for k, v in params.to_arguments().items()],
        labels={"trigger": "cli"},
    )
