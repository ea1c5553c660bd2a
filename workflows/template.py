"""The baseline WorkflowTemplate: readiness -> tokenizer -> load -> aggregate -> report.

Built by a function from the typed knobs and install options; nothing is built at import time.
Every step is a Container template running `python -m steps.<name>` in its own image with the
flags in the README (conventions in steps/CONTRACTS.md); this module only wires them. The same
dict goes to Argo (`install`, `submit`) and to the local runner (`run`), so the local run
exercises this manifest.

Argo facts this relies on (Argo v4.0.5, the schema hera 7.1 is generated from):
- DAG phase is taken from the leaf tasks (dag.go assessDAGPhase), so a failed `load` whose
  failure `aggregate` depends on explicitly (`load.Succeeded || load.Failed`) does not fail the
  workflow when report succeeds: a run where some requests failed is still measured and
  reported, and the report fails its verdict on the load's exit code and the error rate (exit 3
  with fail_on_breach: the nightly run goes red). A load that wrote nothing fails aggregate
  (optional inputs, one line), the report is omitted and inherits the failure: the run fails.
- `{{tasks.load.exitCode}}` exists only once the load's main container has exited; a task whose
  arguments or `when` name it is requeued until it does, i.e. forever for a load that never ran
  (dag.go resolveDependencyReferences). Only the report reads it, and only after aggregate
  succeeded on the load's records.
- Template-level `activeDeadlineSeconds`, `timeout`, `retryStrategy.backoff.maxDuration` and
  container args accept `{{=expr}}` expression tags (the template is substituted with its
  inputs before use); workflow-level `activeDeadlineSeconds` is a plain integer. The limits
  come from workflows.time_budget, the pod security settings from workflows.pod_security.
- Required podAffinity without `namespaces` only matches pods in the workflow's own namespace
  (the benchmark chart's bug), so the load step names the target namespace.
- Mutex names may contain `/` (the lock key is split in three at most), so the endpoint URL
  itself names the per-target mutex.
"""

from __future__ import annotations

from hera.workflows import (
    DAG,
    Artifact,
    Container,
    Env,
    Gauge,
    Label,
    NoneArchiveStrategy,
    Parameter,
    Resources,
    SecretEnv,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from steps.shared import ZONE_LABEL, ZoneAffinity
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.pod_security import (
    container_security_context,
    executor_pod_spec_patch,
    pod_security_context,
)
from workflows.time_budget import RETRY_LIMIT, TimeBudget

__all__ = [
    "API_KEY_ENV",
    "DAG_NAME",
    "LOAD_DEADLINE_MARGIN_S",
    "LOAD_PARTS_ARTIFACT",
    "METRIC_PARAMETERS",
    "REPORT_OUTPUTS",
    "WORK_DIR",
    "build_template",
    "build_workflow",
    "workflow_arguments",
]

DAG_NAME = "baseline"
#: Every step reads and writes under the container's working directory; relative paths in args
#: (e.g. `--outputs-dir outputs`) resolve there, and the local runner maps it per task.
WORK_DIR = "/work"
OUTPUTS_DIR = "outputs"
#: Env var (in the pod) that carries the endpoint's bearer token from its Secret.
API_KEY_ENV = "BENCH_API_KEY"
#: Where readiness and load find a private CA bundle (TemplateOptions.ca_bundle_configmap).
CA_BUNDLE_DIR = "/etc/llm-baseline/ca"
CA_BUNDLE_VOLUME = "ca-bundle"
HF_TOKEN_ENV = "HF_TOKEN"
#: The load step's unmerged part files (a directory, tar.gz in the artifact repository).
LOAD_PARTS_ARTIFACT = "records-parts"
#: Load pod deadline = duration + this: stage drain (config default 120 s), prompt building,
#: tokenizer load and worker start-up, with room to spare. Past it Argo kills the pod.
LOAD_DEADLINE_MARGIN_S = 900
READINESS_DEADLINE_MARGIN_S = 300
TOKENIZER_DEADLINE_S = 1800
AGGREGATE_DEADLINE_S = 1800
REPORT_DEADLINE_S = 900
#: Each step's limits (activeDeadlineSeconds, timeout, retry maxDuration) from its deadline.
#: Retries only where safe: never the load (a second run benchmarks twice), nor aggregate (a
#: pure function of its inputs: what failed once fails again).
BUDGETS = {
    "readiness": TimeBudget(
        f"asInt(inputs.parameters.readiness_timeout) + {READINESS_DEADLINE_MARGIN_S}",
        RETRY_LIMIT,
    ),
    "tokenizer": TimeBudget(str(TOKENIZER_DEADLINE_S), RETRY_LIMIT),
    "load": TimeBudget(f"asInt(inputs.parameters.duration) + {LOAD_DEADLINE_MARGIN_S}"),
    "aggregate": TimeBudget(str(AGGREGATE_DEADLINE_S)),
    "report": TimeBudget(str(REPORT_DEADLINE_S), RETRY_LIMIT),
}

READINESS_INPUTS = (
    "base_url",
    "model_name",
    "readiness_timeout",
    "target_labels",
    "target_namespace",
    "k8s_check",
)
TOKENIZER_INPUTS = ("tokenizer",)
#: Load knobs passed 1:1 as `--<knob>` flags (the load step's overrides).
LOAD_KNOBS = (
    "base_url",
    "model_name",
    "api_type",
    "load_type",
    "rate",
    "duration",
    "input_tokens",
    "output_tokens",
    "num_workers",
    "seed",
    "warmup_requests",
    "request_timeout",
)
LOAD_INPUTS = (*LOAD_KNOBS, "target_namespace")
SLA_KNOBS = (
    "sla_ttft_p50_ms",
    "sla_ttft_p99_ms",
    "sla_itl_p50_ms",
    "sla_itl_p99_ms",
    "sla_e2e_p99_ms",
    "sla_error_rate",
    "sla_schedule_delay_p99_ms",
    "regression_tolerance",
)
REPORT_INPUTS = ("bucket", "path", "s3_endpoint_url", *SLA_KNOBS, "fail_on_breach")
READINESS_OUTPUTS = ("served_model", "zones", "max_model_len")
REPORT_OUTPUTS = (
    "verdict",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "error_rate",
    "report_uri",
)
#: Report outputs exported as Prometheus gauges (Argo custom metrics) for nightly dashboards.
METRIC_PARAMETERS = ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "error_rate")
_METRIC_PREFIX = "llm_baseline_"
_METRIC_HELP = {
    "ttft_p50_ms": "Time to first token, median (ms)",
    "ttft_p99_ms": "Time to first token, p99 (ms)",
    "itl_p50_ms": "Inter-token latency, median (ms)",
    "itl_p99_ms": "Inter-token latency, p99 (ms)",
    "error_rate": "Fraction of requests that failed",
}

#: The report's input that carries the load step's exit code (`--load-exit-code`).
LOAD_EXIT_CODE = "load_exit_code"
#: Exit 2 is bad usage and 3 an SLA breach: retrying cannot change either.
_RETRY_UNLESS_USAGE = "asInt(lastRetry.exitCode) != 2"
_RETRY_STEP_FAILURE_ONLY = "asInt(lastRetry.exitCode) == 1"


def _inp(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _flags(*names: str) -> list[str]:
    """`--name {{inputs.parameters.name}}` pairs: flag = parameter name with dashes."""
    args: list[str] = []
    for name in names:
        args += ["--" + name.replace("_", "-"), _inp(name)]
    return args


def _outputs_file(name: str, default: str | None = None) -> Parameter:
    """An output parameter read from `outputs/<name>`; without `default` a missing file fails
    the step."""
    return Parameter(
        name=name,
        value_from=m.ValueFrom(path=f"{WORK_DIR}/{OUTPUTS_DIR}/{name}", default=default),
    )


def _zone_affinity(params: BaselineParams, mode: ZoneAffinity) -> m.Affinity | None:
    """Same-zone placement next to the model pods, in THEIR namespace: required (the guide's
    rule), preferred (weight 100, the strongest preference) or none (install option)."""
    if mode is ZoneAffinity.off:
        return None
    term = m.PodAffinityTerm(
        topology_key=ZONE_LABEL,
        label_selector=m.LabelSelector(match_labels=params.target_match_labels),
        namespaces=[_inp("target_namespace")],
    )
    if mode is ZoneAffinity.preferred:
        return m.Affinity(
            pod_affinity=m.PodAffinity(
                preferred_during_scheduling_ignored_during_execution=[
                    m.WeightedPodAffinityTerm(weight=100, pod_affinity_term=term)
                ]
            )
        )
    return m.Affinity(
        pod_affinity=m.PodAffinity(required_during_scheduling_ignored_during_execution=[term])
    )


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


def _step(
    options: TemplateOptions, step: str, retry_when: str | None = None, **kwargs: object
) -> Container:
    """One step's container template with its time budget (BUDGETS) and the restricted
    container securityContext; `retry_when` is the retry expression of a retried step."""
    budget = BUDGETS[step]
    return Container(
        name=step,
        image=options.image(step),
        image_pull_policy=options.image_pull_policy,
        command=["python", "-m", f"steps.{step}"],
        working_dir=WORK_DIR,
        security_context=m.SecurityContext(**container_security_context()),
        active_deadline_seconds=budget.active_deadline_seconds(),
        timeout=budget.timeout(),
        retry_strategy=budget.retry_strategy(retry_when) if retry_when else None,
        **kwargs,  # type: ignore[arg-type]
    )


def build_template(params: BaselineParams, options: TemplateOptions) -> WorkflowTemplate:
    """The WorkflowTemplate: defaults = `params`, cluster settings = `options`."""
    api_key_env: list[Env | SecretEnv] = []
    api_key_flag: list[str] = []
    if options.api_key_secret is not None:
        api_key_env = [
            SecretEnv(
                name=API_KEY_ENV,
                secret_name=options.api_key_secret,
                secret_key=options.api_key_key,
                optional=True,
            )
        ]
        api_key_flag = ["--api-key-env", API_KEY_ENV]
    # The steps that talk to the endpoint: its key, and the CA to trust when it is private.
    endpoint_env: list[Env | SecretEnv] = [*api_key_env]
    endpoint_mounts: list[m.VolumeMount] = []
    volumes: list[m.Volume] | None = None
    if options.ca_bundle_configmap is not None:
        volumes = [
            m.Volume(
                name=CA_BUNDLE_VOLUME,
                config_map=m.ConfigMapVolumeSource(name=options.ca_bundle_configmap),
            )
        ]
        endpoint_mounts = [
            m.VolumeMount(name=CA_BUNDLE_VOLUME, mount_path=CA_BUNDLE_DIR, read_only=True)
        ]
        # Honoured by steps.tls.client_ssl_context, the TLS context of every step (load and httpx).
        endpoint_env.append(
            Env(name="SSL_CERT_FILE", value=f"{CA_BUNDLE_DIR}/{options.ca_bundle_key}")
        )

    with WorkflowTemplate(
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
        volumes=volumes,
    ) as template:
        readiness = _step(
            options,
            "readiness",
            inputs=[Parameter(name=n) for n in READINESS_INPUTS],
            args=[
                *_flags("base_url", "model_name"),
                "--timeout",
                _inp("readiness_timeout"),
                *_flags("target_labels", "target_namespace", "k8s_check"),
                # Install-time, like the affinity itself: readiness judges zone-less nodes by it.
                "--zone-affinity",
                options.zone_affinity.value,
                "--outputs-dir",
                OUTPUTS_DIR,
                *api_key_flag,
            ],
            env=endpoint_env,
            volume_mounts=endpoint_mounts or None,
            outputs=[_outputs_file(n) for n in READINESS_OUTPUTS],
            retry_when=_RETRY_UNLESS_USAGE,
        )
        tokenizer = _step(
            options,
            "tokenizer",
            inputs=[Parameter(name=n) for n in TOKENIZER_INPUTS],
            args=[*_flags("tokenizer"), "--out", "{{outputs.artifacts.tokenizer.path}}"],
            env=[
                SecretEnv(
                    name=HF_TOKEN_ENV,
                    secret_name=options.hf_token_secret,
                    secret_key=options.hf_token_key,
                    optional=True,
                )
            ],
            # A directory: keep Argo's default tar.gz so every artifact repository can hold it.
            outputs=[Artifact(name="tokenizer", path=f"{WORK_DIR}/tokenizer")],
            retry_when=_RETRY_UNLESS_USAGE,
        )
        load = _step(
            options,
            "load",
            inputs=[
                *(Parameter(name=n) for n in LOAD_INPUTS),
                Artifact(name="tokenizer", path=f"{WORK_DIR}/tokenizer"),
            ],
            args=[
                "--out",
                "results",
                "--tokenizer-dir",
                "{{inputs.artifacts.tokenizer.path}}",
                *_flags(*LOAD_KNOBS),
                *api_key_flag,
            ],
            env=endpoint_env,
            volume_mounts=endpoint_mounts or None,
            # All optional: a load that wrote nothing (or was killed) fails on its own exit
            # alone; a required output it did not write would also fail the wait container
            # ("no such file or directory", an executor error beside the real cause): Argo
            # v4.0.5 executor.go saveArtifact skips only an optional missing one. Records and
            # run are single files, not tarred: readable straight from the artifact repository.
            # The file names are steps/records.py's (not imported: it needs pyarrow, which the
            # workflows extra lacks; test_template keeps them equal).
            outputs=[
                Artifact(
                    name="records",
                    path=f"{WORK_DIR}/results/records.parquet",
                    archive=NoneArchiveStrategy(),
                    optional=True,
                ),
                Artifact(
                    name="run",
                    path=f"{WORK_DIR}/results/run.json",
                    archive=NoneArchiveStrategy(),
                    optional=True,
                ),
                # Exists only when the main process died before merging its workers' parts:
                # downloaded beside run.json, `python -m steps.load merge` recovers the records.
                Artifact(
                    name=LOAD_PARTS_ARTIFACT,
                    path=f"{WORK_DIR}/results/records.parts",
                    optional=True,
                ),
            ],
            affinity=_zone_affinity(params, options.zone_affinity),
            resources=Resources(
                cpu_request=2, cpu_limit=4, memory_request="4Gi", memory_limit="8Gi"
            ),
        )
        aggregate = _step(
            options,
            "aggregate",
            # Optional: a load that wrote nothing leaves aggregate to say so in one line
            # (its records path is missing) rather than Argo's "Unable to resolve" error.
            inputs=[
                Artifact(name="records", path=f"{WORK_DIR}/load/records.parquet", optional=True),
                Artifact(name="run", path=f"{WORK_DIR}/load/run.json", optional=True),
            ],
            args=["--records", "load", "--out", "{{outputs.artifacts.summary.path}}"],
            outputs=[Artifact(name="summary", path=f"{WORK_DIR}/summary")],
        )
        report = _step(
            options,
            "report",
            inputs=[
                *(Parameter(name=n) for n in REPORT_INPUTS),
                Parameter(name=LOAD_EXIT_CODE),
                Artifact(name="summary", path=f"{WORK_DIR}/summary"),
                Artifact(name="records", path=f"{WORK_DIR}/load/records.parquet"),
                Artifact(name="run", path=f"{WORK_DIR}/load/run.json"),
            ],
            args=[
                "--summary",
                "{{inputs.artifacts.summary.path}}",
                "--records",
                "load",
                "--out",
                "report",
                "--s3-uri",
                "{{=inputs.parameters.bucket == '' ? '' : "
                "'s3://' + inputs.parameters.bucket + '/' + inputs.parameters.path}}",
                *_flags("s3_endpoint_url", *SLA_KNOBS),
                "{{=inputs.parameters.fail_on_breach == 'true' ? "
                "'--fail-on-breach' : '--no-fail-on-breach'}}",
                "--load-exit-code",
                _inp(LOAD_EXIT_CODE),
                "--outputs-dir",
                OUTPUTS_DIR,
            ],
            outputs=[
                # Default "": a report that failed before writing them still gives every
                # metric's `when` a value to test (a missing one is a MetricsError).
                *(_outputs_file(n, default="") for n in REPORT_OUTPUTS),
                Artifact(
                    name="report-html",
                    path=f"{WORK_DIR}/report/report.html",
                    archive=NoneArchiveStrategy(),
                ),
                Artifact(
                    name="summary-json",
                    path=f"{WORK_DIR}/summary/summary.json",
                    archive=NoneArchiveStrategy(),
                ),
                Artifact(name="report", path=f"{WORK_DIR}/report"),
            ],
            metrics=[
                Gauge(
                    name=_METRIC_PREFIX + name,
                    help=_METRIC_HELP[name],
                    value="{{outputs.parameters." + name + "}}",
                    # A statistic without data is "" (null): Argo would keep the gauge's
                    # previous value and flag the run MetricsError, so emit nothing instead.
                    # `when` is govaluate after substitution: quote the value.
                    when="'{{outputs.parameters." + name + "}}' != ''",
                    realtime=False,
                    labels=[Label(key="model", value="{{workflow.parameters.model_name}}")],
                )
                for name in METRIC_PARAMETERS
            ],
            # Retried only on exit 1 (upload or step failure): never on bad input or a breach.
            retry_when=_RETRY_STEP_FAILURE_ONLY,
        )

        with DAG(name=DAG_NAME):
            t_readiness = Task(
                name="readiness", template=readiness, arguments=_pass_through(READINESS_INPUTS)
            )
            t_tokenizer = Task(
                name="tokenizer", template=tokenizer, arguments=_pass_through(TOKENIZER_INPUTS)
            )
            t_load = Task(
                name="load",
                template=load,
                arguments=[*_pass_through(LOAD_INPUTS), t_tokenizer.get_artifact("tokenizer")],
            )
            # Load exits 1 when some requests failed but its records are complete: measure
            # and report them anyway. Not gated on `{{tasks.load.exitCode}}` (a `when`): a
            # load that never ran (Pending past its timeout, a failed init container) has no
            # exit code, and Argo requeues a task whose `when` names a missing variable
            # forever (dag.go resolveDependencyReferences), holding the mutex until the
            # workflow deadline. A load that wrote nothing fails aggregate in one line instead.
            t_aggregate = Task(
                name="aggregate",
                template=aggregate,
                depends="load.Succeeded || load.Failed",
                arguments=[_optional_from(t_load, "records"), _optional_from(t_load, "run")],
            )
            # Report runs only after aggregate succeeded, i.e. on records the load's wait
            # container saved after its main container exited: the exit code always exists.
            t_report = Task(
                name="report",
                template=report,
                arguments=[
                    *_pass_through(REPORT_INPUTS),
                    Parameter(name=LOAD_EXIT_CODE, value="{{tasks.load.exitCode}}"),
                    t_aggregate.get_artifact("summary"),
                    t_load.get_artifact("records"),
                    t_load.get_artifact("run"),
                ],
            )
            t_readiness >> t_tokenizer
            t_tokenizer >> t_load
            t_aggregate >> t_report
    return template


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
