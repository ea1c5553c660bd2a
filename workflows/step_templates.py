"""One Hera Container template per DAG step: what each step pod runs, reads and writes.

Every step runs `python -m steps.<step>` in its own image with the flags in the README
(conventions in steps/CONTRACTS.md); each input parameter `x_y` is passed unchanged as flag
`--x-y` (no expressions in args: the steps read Argo's strings, e.g. `--bucket ""` = no upload,
`--fail-on-breach true|false`).
Pieces every step shares (image, working directory, restricted securityContext, time budget,
retries) come from `_step`; the load pod's zone affinity and resources have their own helpers.
`workflows.template` wires these templates into the DAG.

Argo facts this relies on (Argo v4.0.5, the schema hera 7.1 is generated from):
- Template-level `activeDeadlineSeconds`, `timeout` and `retryStrategy.backoff.maxDuration`
  accept `{{=expr}}` expression tags (the template is substituted with its inputs before use):
  a limit that depends on a parameter is one. The limits come from workflows.time_budget,
  the pod security settings from workflows.pod_security.
- Required podAffinity without `namespaces` only matches pods in the workflow's own namespace
  (the benchmark chart's bug), so the load step names the target namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.workflows import (
    Artifact,
    Container,
    Env,
    Gauge,
    Label,
    NoneArchiveStrategy,
    Parameter,
    RawArtifact,
    Resources,
    SecretEnv,
)
from hera.workflows import models as m

from steps.errors import UsageError
from steps.shared import LADDER_MAX_RUNGS, LADDER_REQUESTS_PER_USER, ZONE_LABEL, ZoneAffinity
from steps.summary_model import (
    CAPACITY_OUTPUT_NAMES,
    KEY_METRICS,
    OUTPUT_METRIC_NAMES,
    SLA_METRIC_NAMES,
)
from workflows.argo_expr import evaluate
from workflows.load_fanout import (
    COORDINATOR_TASK,
    coordinator_fields,
    shard_dirs,
    shard_input,
    shard_output,
)
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.pod_security import container_security_context
from workflows.scenarios import (
    DATASET_KNOBS,
    DISTRIBUTION_KNOBS,
    EXACT_KNOBS,
    SCENARIOS,
    STAGED_KNOBS,
    SWEEP_KNOBS,
    ScenarioName,
)
from workflows.time_budget import PENDING_ALLOWANCE_S, RETRY_LIMIT, TimeBudget

__all__ = [
    "AGGREGATE_ARTIFACTS",
    "AGGREGATE_INPUTS",
    "API_KEY_ENV",
    "DATASET_INPUTS",
    "LOAD_DEADLINE_MARGIN_S",
    "LOAD_EXIT_CODE",
    "LOAD_KNOBS",
    "LOAD_PARTS_ARTIFACT",
    "PROBE_DEADLINE_MARGIN_S",
    "PROBE_OUTPUTS",
    "READINESS_INPUTS",
    "REPORT_INPUTS",
    "REPORT_OUTPUTS",
    "SERVER_METRICS_ARTIFACT",
    "TOKENIZER_INPUTS",
    "WORK_DIR",
    "EndpointAccess",
    "aggregate_template",
    "check_load_fits",
    "dataset_template",
    "endpoint_access",
    "load_inputs",
    "load_template",
    "probe_inputs",
    "probe_template",
    "readiness_inputs",
    "readiness_template",
    "report_template",
    "tokenizer_template",
]

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
#: Probe pod deadline = the ladder's bound (every rung's requests, each within sweep_timeout,
#: steps.shared) + this: each probe run's prompt building and worker start-up, with room.
PROBE_DEADLINE_MARGIN_S = 900
READINESS_DEADLINE_MARGIN_S = 300
TOKENIZER_DEADLINE_S = 1800
#: Fetch (0.6 GB from the Hub or S3) and one streamed pass over the file (~1 s per 100 MB).
DATASET_DEADLINE_S = 1800
AGGREGATE_DEADLINE_S = 1800
REPORT_DEADLINE_S = 900
#: Each step's limits (activeDeadlineSeconds, timeout, retry maxDuration) from its deadline.
#: Retries only where safe: never the load (a second run benchmarks twice), nor aggregate (a
#: pure function of its inputs: what failed once fails again).
#: The load's run time: the send window plus a margin; a staged run every stage's seconds and a
#: drain after each (steps/stage_spec.py; Argo's expr-lang v1.17 builtins, see
#: workflows.argo_expr).
_LOAD_DEADLINES = {
    "load": f"asInt(inputs.parameters.duration) + {LOAD_DEADLINE_MARGIN_S}",
    "load-staged": (
        "sum(map(split(inputs.parameters.stages, ','), {asInt(split(#, 'x')[1])})) + "
        "len(split(inputs.parameters.stages, ',')) * asInt(inputs.parameters.drain_timeout) + "
        f"{LOAD_DEADLINE_MARGIN_S}"
    ),
}


def check_load_fits(params: BaselineParams, options: TemplateOptions) -> None:
    """Refuse a run whose load pod (its deadline as Argo computes it from these knobs, plus
    its Pending allowance) cannot finish inside the workflow's activeDeadlineSeconds: Argo
    would stop the whole workflow mid-stage. A sweep's stages come from its probe, but their
    number and length are its knobs (the rates do not change the deadline)."""
    knobs: tuple[str, ...]  # what the message names: the knobs to change
    scope = {f"inputs.parameters.{k}": v for k, v in params.to_arguments().items()}
    if params.stages is not None:
        expression, knobs = _LOAD_DEADLINES["load-staged"], ("stages", "drain_timeout")
    elif SCENARIOS[params.scenario].swept:
        expression = _LOAD_DEADLINES["load-staged"]
        knobs = ("sweep_num_stages", "sweep_stage_duration", "drain_timeout")
        stages = [f"1x{params.sweep_stage_duration}"] * params.sweep_num_stages
        scope["inputs.parameters.stages"] = ",".join(stages)
    elif params.scenario is ScenarioName.baseline:
        expression, knobs = _LOAD_DEADLINES["load"], ("duration",)
    else:
        return
    needed = int(str(evaluate(expression, scope))) + PENDING_ALLOWANCE_S
    if needed > options.workflow_deadline_s:
        raise UsageError(
            f"{', '.join(knobs)}: the load alone may take {needed} s (its stages, a drain after "
            f"each, start-up and Pending time), more than the workflow's deadline of "
            f"{options.workflow_deadline_s} s: shorten the stages or raise --workflow-deadline-s"
        )


BUDGETS = {
    "readiness": TimeBudget(
        f"asInt(inputs.parameters.readiness_timeout) + {READINESS_DEADLINE_MARGIN_S}",
        RETRY_LIMIT,
    ),
    "tokenizer": TimeBudget(str(TOKENIZER_DEADLINE_S), RETRY_LIMIT),
    "dataset": TimeBudget(str(DATASET_DEADLINE_S), RETRY_LIMIT),
    **{name: TimeBudget(deadline) for name, deadline in _LOAD_DEADLINES.items()},
    # The start coordinator of a load over several pods lives from before the load pods are
    # scheduled until the last one finished: their run time plus their Pending time and their
    # --start-timeout (600 s each).
    **{
        name.replace("load", COORDINATOR_TASK, 1): TimeBudget(
            f"{deadline} + {2 * PENDING_ALLOWANCE_S}"
        )
        for name, deadline in _LOAD_DEADLINES.items()
    },
    # The sweep probe: its ladder ends within LADDER_MAX_RUNGS rungs of LADDER_REQUESTS_PER_USER
    # requests per user, each within sweep_timeout; the burst (5 s + sweep_timeout) is shorter.
    "probe": TimeBudget(
        f"asInt(inputs.parameters.sweep_timeout) * {LADDER_MAX_RUNGS * LADDER_REQUESTS_PER_USER}"
        f" + {PROBE_DEADLINE_MARGIN_S}"
    ),
    "aggregate": TimeBudget(str(AGGREGATE_DEADLINE_S)),
    "report": TimeBudget(str(REPORT_DEADLINE_S), RETRY_LIMIT),
}
#: Exit 2 is bad usage and 3 an SLA breach: retrying cannot change either.
_RETRY_UNLESS_USAGE = "asInt(lastRetry.exitCode) != 2"
_RETRY_STEP_FAILURE_ONLY = "asInt(lastRetry.exitCode) == 1"

# Input parameters, each fed from the workflow parameter of the same name.
READINESS_INPUTS = (
    "base_url",
    "model_name",
    "readiness_timeout",
    "target_labels",
    "target_namespace",
    "k8s_check",
)
#: The scenario's longest request, which readiness checks against the served max_model_len:
#: an exact scenario's lengths or a distribution's max (`readiness_inputs` picks its own).
LENGTH_KNOBS = ("input_tokens", "output_tokens", "input_max", "output_max")
TOKENIZER_INPUTS = ("tokenizer",)
#: A real-data scenario's dataset task (its S3 store is the results' endpoint, if any).
DATASET_INPUTS = (*DATASET_KNOBS, "s3_endpoint_url")
#: Load knobs passed 1:1 as `--<knob>` flags (the load step's overrides), those of every
#: scenario; a scenario's load task gets the ones it has (`load_inputs`).
LOAD_KNOBS = (
    "base_url",
    "model_name",
    "api_type",
    "load_type",
    *EXACT_KNOBS,
    *STAGED_KNOBS,
    "num_workers",
    "seed",
    "warmup_requests",
    "request_timeout",
    "server_metrics_interval",
    "metrics_port",
)
#: The model pods the load pod sits next to (affinity) and whose /metrics it scrapes.
LOAD_TARGET_INPUTS = ("target_labels", "target_namespace")
#: The sweep probe's knobs (`--<knob>` flags of `python -m steps.load probe`).
PROBE_KNOBS = (
    "base_url",
    "model_name",
    "api_type",
    *SWEEP_KNOBS,
    *DISTRIBUTION_KNOBS,
    "num_workers",
    "seed",
    "warmup_requests",
    "request_timeout",
)
#: The probe's output parameters: the stages it generated (the load's `--stages`) and the rate.
PROBE_OUTPUTS = ("stages", "saturation_rate")
#: The per-request SLO bounds goodput and SLO attainment are counted against (`--slo-*`).
AGGREGATE_INPUTS = ("slo_ttft_ms", "slo_tpot_ms", "slo_e2e_ms")
#: The load's samples of the model server's /metrics (steps/server_metrics.py), optional all
#: the way: absent when sampling was off or the load wrote nothing.
SERVER_METRICS_ARTIFACT = "server-metrics"
#: The load's files aggregate reads (optional artifacts).
AGGREGATE_ARTIFACTS = ("records", "run", SERVER_METRICS_ARTIFACT)
#: The report's SLA limits (`sla_<metric>`) and its regression tolerance.
SLA_KNOBS = (*(f"sla_{name}" for name in SLA_METRIC_NAMES), "regression_tolerance")
REPORT_INPUTS = (
    "bucket",
    "path",
    "s3_endpoint_url",
    *SLA_KNOBS,
    "history_window",
    "fail_on_breach",
)
#: A load pod's own inputs when the load fans out: its index and the coordinator's address.
FANOUT_INPUTS = ("pod_index", "coordinator")
#: The report's input that carries the load step's exit code (`--load-exit-code`).
LOAD_EXIT_CODE = "load_exit_code"

READINESS_OUTPUTS = ("served_model", "zones", "max_model_len")
#: The report's output parameters; its key metrics (OUTPUT_METRIC_NAMES) are also exported as
#: Prometheus gauges (Argo custom metrics) for nightly dashboards. The capacity rates are ""
#: for a run of one rate.
REPORT_OUTPUTS = ("verdict", *OUTPUT_METRIC_NAMES, *CAPACITY_OUTPUT_NAMES, "report_uri")
_METRIC_PREFIX = "llm_baseline_"
_LOAD_RESOURCES = Resources(cpu_request=2, cpu_limit=4, memory_request="4Gi", memory_limit="8Gi")


# ---------------------------------------------------------------------------------------------
# Shared pieces


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


def _file_artifact(name: str, path: str, optional: bool | None = None) -> Artifact:
    """A single-file artifact kept as is (not tarred): readable straight from the repository."""
    return Artifact(name=name, path=path, archive=NoneArchiveStrategy(), optional=optional)


#: The config scenario's config text: a raw input artifact the load step reads (`--config`).
CONFIG_PATH = f"{WORK_DIR}/config/config.yml"


def readiness_inputs(params: BaselineParams) -> tuple[str, ...]:
    """The readiness task's input parameters: the endpoint and pods, and the scenario's longest
    request lengths when it has them as knobs (a user's config keeps them in its text)."""
    return (*READINESS_INPUTS, *(k for k in LENGTH_KNOBS if k in params.knobs))


def load_inputs(params: BaselineParams) -> tuple[str, ...]:
    """The load task's input parameters: the scenario's load knobs (the config scenario's
    config text and name too; a swept scenario's `stages`, the probe's output, not a knob)
    and the model pods (the zone affinity's namespace; the pods whose /metrics it scrapes)."""
    config = ("config", "config_name") if params.scenario is ScenarioName.config else ()
    swept = SCENARIOS[params.scenario].swept
    return (
        *(k for k in LOAD_KNOBS if k in params.knobs or (swept and k == "stages")),
        *config,
        *LOAD_TARGET_INPUTS,
    )


def _load_base(params: BaselineParams) -> tuple[list[str], list[Artifact]]:
    """Where the load step's config comes from: the packaged baseline (no flag), a packaged
    staged scenario (`--scenario`, which also names the run for the report's history), or the
    user's config text, written to a file by Argo (a raw artifact: Argo substitutes the
    parameter into it, quoting newlines, as into any template field) and named by
    `config_name`; a real-data scenario's load also gets the dataset task's directory."""
    if params.scenario is ScenarioName.config:
        raw = RawArtifact(name="config", path=CONFIG_PATH, data=_inp("config"))
        return [
            "--config",
            "{{inputs.artifacts.config.path}}",
            "--scenario",
            _inp("config_name"),
        ], [raw]
    if SCENARIOS[params.scenario].real_data:  # the dataset task's file (and manifest)
        dataset = Artifact(name="dataset", path=f"{WORK_DIR}/dataset")
        flags = ["--scenario", params.scenario.value]
        return [*flags, "--dataset-dir", "{{inputs.artifacts.dataset.path}}"], [dataset]
    if SCENARIOS[params.scenario].staged:
        return ["--scenario", params.scenario.value], []
    return [], []


def probe_inputs(params: BaselineParams) -> tuple[str, ...]:
    """The probe task's input parameters: its knobs and the target namespace."""
    return (*(k for k in PROBE_KNOBS if k in params.knobs), "target_namespace")


def _step(
    options: TemplateOptions,
    step: str,
    retry_when: str | None = None,
    budget_name: str | None = None,
    name: str | None = None,
    **fields: Any,
) -> Container:
    """One step's container template (named `name`, default the step) with its time budget
    (BUDGETS[budget_name or step]) and the restricted container securityContext; `retry_when`
    is the retry expression of a retried step."""
    budget = BUDGETS[budget_name or step]
    return Container(
        name=name or step,
        image=options.image(step),
        image_pull_policy=options.image_pull_policy,
        command=["python", "-m", f"steps.{step}"],
        working_dir=WORK_DIR,
        security_context=m.SecurityContext(**container_security_context()),
        active_deadline_seconds=budget.active_deadline_seconds(),
        timeout=budget.timeout(),
        retry_strategy=budget.retry_strategy(retry_when) if retry_when else None,
        **fields,
    )


@dataclass(frozen=True)
class EndpointAccess:
    """What the steps that call the endpoint (readiness, load) get: its bearer token from a
    Secret, and the CA bundle of a private CA mounted from a ConfigMap."""

    env: list[Env | SecretEnv]
    volume_mounts: list[m.VolumeMount] | None
    #: The workflow's volumes (the CA bundle's ConfigMap), None when there is none.
    volumes: list[m.Volume] | None
    api_key_flag: list[str]


def endpoint_access(options: TemplateOptions) -> EndpointAccess:
    """The endpoint's key and private CA as the install options name them."""
    env: list[Env | SecretEnv] = []
    api_key_flag: list[str] = []
    if options.api_key_secret is not None:
        env.append(
            SecretEnv(
                name=API_KEY_ENV,
                secret_name=options.api_key_secret,
                secret_key=options.api_key_key,
                optional=True,
            )
        )
        api_key_flag = ["--api-key-env", API_KEY_ENV]
    if options.ca_bundle_configmap is None:
        return EndpointAccess(env, None, None, api_key_flag)
    volume = m.Volume(
        name=CA_BUNDLE_VOLUME,
        config_map=m.ConfigMapVolumeSource(name=options.ca_bundle_configmap),
    )
    mount = m.VolumeMount(name=CA_BUNDLE_VOLUME, mount_path=CA_BUNDLE_DIR, read_only=True)
    # Honoured by steps.tls.client_ssl_context, the TLS context of every step (load and httpx).
    env.append(Env(name="SSL_CERT_FILE", value=f"{CA_BUNDLE_DIR}/{options.ca_bundle_key}"))
    return EndpointAccess(env, [mount], [volume], api_key_flag)


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


# ---------------------------------------------------------------------------------------------
# The five steps, in DAG order


def readiness_template(
    params: BaselineParams, options: TemplateOptions, endpoint: EndpointAccess
) -> Container:
    """Waits for /health and the model, checks the model pods' zones and that the scenario's
    longest request fits the served context (retried unless usage)."""
    inputs = readiness_inputs(params)
    return _step(
        options,
        "readiness",
        inputs=[Parameter(name=n) for n in inputs],
        args=[
            *_flags("base_url", "model_name"),
            "--timeout",
            _inp("readiness_timeout"),
            *_flags("target_labels", "target_namespace", "k8s_check"),
            *_flags(*(n for n in inputs if n in LENGTH_KNOBS)),
            # Install-time, like the affinity itself: readiness judges zone-less nodes by it.
            "--zone-affinity",
            options.zone_affinity.value,
            "--outputs-dir",
            OUTPUTS_DIR,
            *endpoint.api_key_flag,
        ],
        env=endpoint.env,
        volume_mounts=endpoint.volume_mounts,
        outputs=[_outputs_file(n) for n in READINESS_OUTPUTS],
        retry_when=_RETRY_UNLESS_USAGE,
    )


def _hub_fetch_step(
    options: TemplateOptions, step: str, inputs: tuple[str, ...], artifact: str
) -> Container:
    """A step that fetches files once (from the Hub, with the optional HF token Secret) into a
    directory artifact; retried unless usage (a bad source stays bad). A directory: Argo's
    default tar.gz, so every artifact repository can hold it."""
    return _step(
        options,
        step,
        inputs=[Parameter(name=n) for n in inputs],
        args=[*_flags(*inputs), "--out", f"{{{{outputs.artifacts.{artifact}.path}}}}"],
        env=[
            SecretEnv(
                name=HF_TOKEN_ENV,
                secret_name=options.hf_token_secret,
                secret_key=options.hf_token_key,
                optional=True,
            )
        ],
        outputs=[Artifact(name=artifact, path=f"{WORK_DIR}/{artifact}")],
        retry_when=_RETRY_UNLESS_USAGE,
    )


def tokenizer_template(options: TemplateOptions) -> Container:
    """Fetches the tokenizer once, for the load step."""
    return _hub_fetch_step(options, "tokenizer", TOKENIZER_INPUTS, "tokenizer")


def dataset_template(options: TemplateOptions) -> Container:
    """Fetches and checks a real-data scenario's conversations (and manifest.json) once, for
    the load step."""
    return _hub_fetch_step(options, "dataset", DATASET_INPUTS, "dataset")


def load_template(
    params: BaselineParams, options: TemplateOptions, endpoint: EndpointAccess
) -> Container:
    """Drives the endpoint and writes its records, next to the model pods; never retried.
    A staged scenario's load starts from its packaged config (`--scenario`, which also names
    the run for the report's history) and gets every knob it has as a flag."""
    inputs = load_inputs(params)
    base_flags, base_artifacts = _load_base(params)
    pods = options.load_pods
    outputs = [
        ("records", f"{WORK_DIR}/results/records.parquet"),
        ("run", f"{WORK_DIR}/results/run.json"),
        (SERVER_METRICS_ARTIFACT, f"{WORK_DIR}/results/server_metrics.parquet"),
        # Exists only when the main process died before merging its workers' parts:
        # downloaded beside run.json, `python -m steps.load merge` recovers the records.
        (LOAD_PARTS_ARTIFACT, f"{WORK_DIR}/results/records.parts"),
    ]
    return _step(
        options,
        "load",
        # A stage spec (a knob, or the sweep probe's output): the deadline sums its stages.
        budget_name="load-staged" if "stages" in inputs else None,
        inputs=[
            *(Parameter(name=n) for n in inputs),
            *(Parameter(name=n) for n in FANOUT_INPUTS if pods > 1),
            Artifact(name="tokenizer", path=f"{WORK_DIR}/tokenizer"),
            *base_artifacts,
        ],
        args=[
            "--out",
            "results",
            *base_flags,
            "--tokenizer-dir",
            "{{inputs.artifacts.tokenizer.path}}",
            *_flags(*(n for n in inputs if n in (*LOAD_KNOBS, *LOAD_TARGET_INPUTS))),
            *(["--load-pods", str(pods), *_flags(*FANOUT_INPUTS)] if pods > 1 else []),
            *endpoint.api_key_flag,
        ],
        env=endpoint.env,
        volume_mounts=endpoint.volume_mounts,
        # All optional: a load that wrote nothing (or was killed) fails on its own exit
        # alone; a required output it did not write would also fail the wait container
        # ("no such file or directory", an executor error beside the real cause): Argo
        # v4.0.5 executor.go saveArtifact skips only an optional missing one.
        # The file names are steps/records.py's (not imported: it needs pyarrow, which the
        # workflows extra lacks; test_step_templates keeps them equal). Several pods: each
        # pod's files under its own key (workflows.load_fanout).
        outputs=[
            (
                shard_output(name, path)
                if pods > 1
                else _file_artifact(name, path, optional=True)
                if path.endswith((".parquet", ".json"))
                else Artifact(name=name, path=path, optional=True)
            )
            for name, path in outputs
        ],
        affinity=_zone_affinity(params, options.zone_affinity),
        resources=_LOAD_RESOURCES,
    )


def _server_metrics_input() -> Artifact:
    """The load's server_metrics.parquet beside its records (steps find it by that name)."""
    return Artifact(
        name=SERVER_METRICS_ARTIFACT, path=f"{WORK_DIR}/load/server_metrics.parquet", optional=True
    )


def load_coordinator_template(params: BaselineParams, options: TemplateOptions) -> Container:
    """The start coordinator of the load pods (a daemon, workflows.load_fanout); its deadline
    is the load's run time plus the pods' Pending time and start timeout, so it needs the
    inputs the load's deadline is computed from."""
    staged = "stages" in load_inputs(params)
    return _step(
        options,
        "load",
        budget_name=f"{COORDINATOR_TASK}-staged" if staged else COORDINATOR_TASK,
        name=COORDINATOR_TASK,
        inputs=[Parameter(name=n) for n in coordinator_inputs(params)],
        **coordinator_fields(options.load_pods),
    )


def coordinator_inputs(params: BaselineParams) -> tuple[str, ...]:
    """The load inputs the coordinator's deadline reads."""
    staged = "stages" in load_inputs(params)  # a knob, or the sweep probe's output
    return ("stages", "drain_timeout") if staged else ("duration",)


def _load_records(options: TemplateOptions) -> tuple[list[Artifact], list[str]]:
    """The input artifacts holding the load's files and the `--records` paths to them: one
    directory, or one per pod under the shards prefix (workflows.load_fanout). Optional: a
    load that wrote nothing leaves the step to say so in one line (its records path is
    missing) rather than Argo's "Unable to resolve" error."""
    if options.load_pods > 1:
        return [shard_input(f"{WORK_DIR}/load")], shard_dirs("load", options.load_pods)
    return [
        Artifact(name="records", path=f"{WORK_DIR}/load/records.parquet", optional=True),
        Artifact(name="run", path=f"{WORK_DIR}/load/run.json", optional=True),
        _server_metrics_input(),
    ], ["load"]


def probe_template(
    params: BaselineParams, options: TemplateOptions, endpoint: EndpointAccess
) -> Container:
    """The sweep's probe (`python -m steps.load probe`, the load image): finds the saturation
    rate where the load will run (same zone affinity and resources) and writes the stages as
    its output parameter `stages`; never retried (a rerun probes again)."""
    inputs = probe_inputs(params)
    return _step(
        options,
        "load",
        budget_name="probe",
        name="probe",
        inputs=[
            *(Parameter(name=n) for n in inputs),
            Artifact(name="tokenizer", path=f"{WORK_DIR}/tokenizer"),
        ],
        args=[
            "probe",
            "--out",
            "probe",
            "--scenario",
            params.scenario.value,
            "--tokenizer-dir",
            "{{inputs.artifacts.tokenizer.path}}",
            *_flags(*(n for n in inputs if n != "target_namespace")),
            "--outputs-dir",
            OUTPUTS_DIR,
            *endpoint.api_key_flag,
        ],
        env=endpoint.env,
        volume_mounts=endpoint.volume_mounts,
        # No default for `stages`: a probe that found no rate fails here, and the load, which
        # needs them, never starts. The evidence is optional (a probe that failed early).
        outputs=[
            *(_outputs_file(n) for n in PROBE_OUTPUTS),
            _file_artifact("probe", f"{WORK_DIR}/probe/probe.json", optional=True),
        ],
        affinity=_zone_affinity(params, options.zone_affinity),
        resources=_LOAD_RESOURCES,
    )


def aggregate_template(options: TemplateOptions) -> Container:
    """Turns the load's records into summary.json; never retried (a pure function)."""
    artifacts, records = _load_records(options)
    return _step(
        options,
        "aggregate",
        inputs=[*(Parameter(name=n) for n in AGGREGATE_INPUTS), *artifacts],
        args=[
            "--records",
            *records,
            "--out",
            "{{outputs.artifacts.summary.path}}",
            *_flags(*AGGREGATE_INPUTS),
        ],
        outputs=[Artifact(name="summary", path=f"{WORK_DIR}/summary")],
    )


def _report_gauges() -> list[Gauge]:
    """The report's headline figures as Prometheus gauges, labelled by model."""
    return [
        Gauge(
            name=_METRIC_PREFIX + name,
            help=KEY_METRICS[name].description,
            value="{{outputs.parameters." + name + "}}",
            # A statistic without data is "" (null): Argo would keep the gauge's
            # previous value and flag the run MetricsError, so emit nothing instead.
            # `when` is govaluate after substitution: quote the value.
            when="'{{outputs.parameters." + name + "}}' != ''",
            realtime=False,
            labels=[Label(key="model", value="{{workflow.parameters.model_name}}")],
        )
        for name in OUTPUT_METRIC_NAMES
    ]


def report_template(options: TemplateOptions) -> Container:
    """Renders the report, judges SLA and regression, uploads (retried on exit 1 only)."""
    artifacts, records = _load_records(options)
    if options.load_pods == 1:  # runs only after aggregate read them: not optional
        artifacts = [
            Artifact(name=a.name, path=a.path) if a.name in ("records", "run") else a
            for a in artifacts
        ]
    return _step(
        options,
        "report",
        inputs=[
            *(Parameter(name=n) for n in REPORT_INPUTS),
            Parameter(name=LOAD_EXIT_CODE),
            Artifact(name="summary", path=f"{WORK_DIR}/summary"),
            *artifacts,
        ],
        args=[
            "--summary",
            "{{inputs.artifacts.summary.path}}",
            "--records",
            *records,
            "--out",
            "report",
            *_flags(*REPORT_INPUTS),
            "--load-exit-code",
            _inp(LOAD_EXIT_CODE),
            "--outputs-dir",
            OUTPUTS_DIR,
        ],
        outputs=[
            # Default "": a report that failed before writing them still gives every
            # metric's `when` a value to test (a missing one is a MetricsError).
            *(_outputs_file(n, default="") for n in REPORT_OUTPUTS),
            _file_artifact("report-html", f"{WORK_DIR}/report/report.html"),
            _file_artifact("summary-json", f"{WORK_DIR}/summary/summary.json"),
            Artifact(name="report", path=f"{WORK_DIR}/report"),
        ],
        metrics=_report_gauges(),
        # Retried only on exit 1 (upload or step failure): never on bad input or a breach.
        retry_when=_RETRY_STEP_FAILURE_ONLY,
    )
