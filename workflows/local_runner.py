"""Run a rendered WorkflowTemplate on this machine: the same dict Argo gets, no cluster.

Each DAG task's container `command`/`args` runs as a subprocess with Argo's substitutions
(`{{workflow.parameters.*}}`, `{{inputs.parameters.*}}`, `{{inputs.artifacts.*.path}}`,
`{{outputs.artifacts.*.path}}`, `{{=expr}}` tags of the subset in `argo_expr`), output parameters
are read from their files, and artifacts are handed between tasks through a run directory:

    <run_dir>/tasks/<task>/       the container's workingDir (every declared path lives under it)
    <run_dir>/artifacts/<task>/<artifact>   what Argo would store in the artifact repository
    <run_dir>/repository/<key>    key-only artifacts (`s3: {key}`), the repository's own layout:
                                  an input whose key is a prefix gets the directory under it

A task with `withSequence: {count: N}` runs as N instances `task(i:i)` at once (`{{item}}` = i),
its phase Succeeded when every instance succeeded, as Argo's task group; a `daemon: true`
template's process starts, its task is Daemoned at once (`{{tasks.X.ip}}` = 127.0.0.1) and it is
stopped when the DAG ends; `{{workflow.name}}` is the run directory's name.

Which manifest fields it emulates, which it accepts without local effect and the refusal of
the rest by name live in one list, `workflows.local_subset.SUBSET`. Independent tasks run one
after another; retries with backoff and `backoff.maxDuration`, activeDeadlineSeconds,
`depends` and `when` expressions, `{{tasks.X.exitCode}}`/`{{tasks.X.status}}`, optional
artifacts, output-parameter defaults, the workflow phase from the DAG's leaves, and the
workflow mutex (a file lock) behave as in Argo v4.0.5. A task argument or `when` that names a
`tasks.*` value the run does not have is an error here: Argo would requeue that task until the
workflow deadline. The cluster-only fields a manifest uses (images, resources, affinity,
security contexts, `podSpecPatch`, the Pending `timeout`, service account, pod GC, TTL, artifact
repository, Prometheus export) are named in one line before the run starts, so a green local
run is never mistaken for a cluster run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from steps.errors import UsageError
from workflows.argo_expr import ExprError, depends_tasks, evaluate, evaluate_depends, substitute
from workflows.local_process import (
    Daemon,
    copy_path,
    hold_mutexes,
    run_process,
)
from workflows.local_subset import (
    UnsupportedFeature,
    check_supported,
    cluster_only_fields,
    templates_by_name,
)

__all__ = ["RunResult", "RunnerEnv", "TaskResult", "run_template"]

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RunnerEnv:
    """How steps run locally: `python` in a command means `python_executable`."""

    python_executable: str
    environ: Mapping[str, str]
    echo: Callable[[str], None]
    lock_dir: Path


@dataclass(frozen=True)
class TaskResult:
    """One DAG task's end, as Argo's node would show it."""

    name: str
    phase: str  # Succeeded | Failed | Skipped (`when` false) | Omitted (`depends` false)
    exit_code: int | None
    attempts: int
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    """The workflow's phase, its tasks and the gauges its metrics would export."""

    phase: str  # Succeeded | Failed
    tasks: dict[str, TaskResult]
    metrics: dict[str, float]
    run_dir: Path


# ---------------------------------------------------------------------------------------------
# Pure helpers


def _duration_s(text: str) -> float:
    """Argo/Go duration strings as the templates use them: `15s`, `5m`, `1h`, or seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _topological(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {t["name"]: t for t in tasks}
    done: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in stack:
            raise UsageError(f"local runner: dependency cycle through {' -> '.join(stack)}")
        if name not in by_name:
            raise UsageError(f"local runner: depends names unknown task '{name}'")
        for dep in sorted(depends_tasks(by_name[name].get("depends", ""))):
            visit(dep, (*stack, name))
        seen.add(name)
        done.append(by_name[name])

    for task in tasks:
        visit(task["name"], ())
    return done


def _effective_phases(tasks: list[dict[str, Any]], results: Mapping[str, TaskResult]) -> str:
    """Workflow phase as Argo derives a DAG's (dag.go assessDAGPhase): from the leaves, a
    Skipped or Omitted task inheriting the worst phase of its dependencies (neither counts as
    completed), so a failure handled by `depends` does not fail the run, but a failed task
    whose dependent was skipped by its `when` does."""
    effective: dict[str, str] = {}
    for task in _topological(tasks):
        own = results[task["name"]].phase
        if own not in ("Omitted", "Skipped"):
            effective[task["name"]] = own
            continue
        parents = [effective[d] for d in depends_tasks(task.get("depends", ""))]
        effective[task["name"]] = "Failed" if "Failed" in parents else "Succeeded"
    depended = set().union(*(depends_tasks(t.get("depends", "")) for t in tasks))
    leaves = [t["name"] for t in tasks if t["name"] not in depended]
    return "Failed" if any(effective[leaf] == "Failed" for leaf in leaves) else "Succeeded"


@dataclass(frozen=True)
class _Retry:
    """A template's retryStrategy as the controller applies it (none: one attempt)."""

    limit: int
    delay_s: float
    factor: float
    max_duration_s: float
    expression: str | None

    @classmethod
    def of(cls, template: dict[str, Any], resolve: Callable[[str], str]) -> _Retry:
        retry = template.get("retryStrategy") or {}
        backoff = retry.get("backoff", {})
        return cls(
            limit=int(retry.get("limit", 0)),
            delay_s=_duration_s(backoff.get("duration", "0s")),
            factor=float(backoff.get("factor", 1)),
            max_duration_s=_duration_s(resolve(backoff.get("maxDuration", "inf"))),
            expression=retry.get("expression"),
        )

    def wanted(self, exit_code: int) -> bool:
        """Whether the retry expression asks for another attempt after `exit_code`."""
        if self.expression is None:
            return True
        variables = {"lastRetry.exitCode": str(exit_code), "lastRetry.status": "Failed"}
        return evaluate(self.expression, variables) is True


@dataclass(frozen=True)
class _Workdir:
    """A task's container workingDir mapped onto its directory on this machine."""

    template: str
    working_dir: PurePosixPath
    host_dir: Path

    def host(self, path: str) -> Path:
        pure = PurePosixPath(path)
        if not pure.is_relative_to(self.working_dir):
            raise UnsupportedFeature(
                f"local runner: template '{self.template}' path {path} is outside its "
                f"workingDir {self.working_dir}"
            )
        return self.host_dir / pure.relative_to(self.working_dir)


# ---------------------------------------------------------------------------------------------
# One execution of a manifest


class _Run:
    """One execution of a manifest: state shared by its tasks."""

    def __init__(
        self, manifest: Manifest, params: dict[str, str], run_dir: Path, env: RunnerEnv
    ) -> None:
        self.templates = templates_by_name(manifest)
        self.params = params
        self.run_dir = run_dir
        self.env = env
        self.results: dict[str, TaskResult] = {}
        self.stored: dict[tuple[str, str], Path] = {}
        self.metrics: dict[str, float] = {}
        self.deadline = float("inf")
        self.daemons: dict[str, Daemon] = {}

    def global_scope(self) -> dict[str, str]:
        """Workflow parameters and what finished tasks expose, as Argo's DAG scope: status
        always, exitCode only for a task whose container ran, outputs it produced."""
        scope = {f"workflow.parameters.{k}": v for k, v in self.params.items()}
        scope["workflow.name"] = self.run_dir.name
        for task in self.daemons:
            scope[f"tasks.{task}.ip"] = "127.0.0.1"
        for task, result in self.results.items():
            scope[f"tasks.{task}.status"] = result.phase
            if result.exit_code is not None:
                scope[f"tasks.{task}.exitCode"] = str(result.exit_code)
            for name, value in result.outputs.items():
                scope[f"tasks.{task}.outputs.parameters.{name}"] = value
        return scope

    def resolve(self, task: str, text: str, scope: Mapping[str, str]) -> str:
        """`substitute`, with a missing value named as the hang it would be on Argo."""
        try:
            return substitute(text, scope)
        except ExprError as exc:
            raise UsageError(
                f"local runner: task '{task}': {exc}; Argo would requeue this task until the "
                "workflow deadline"
            ) from None

    def skipped_by_when(self, task: dict[str, Any]) -> bool:
        """Argo evaluates `when` (govaluate) after substituting the DAG scope."""
        when = task.get("when")
        if not when:
            return False
        resolved = self.resolve(task["name"], when, self.global_scope())
        try:
            return evaluate(resolved, {}) is not True
        except ExprError as exc:
            raise UsageError(f"local runner: task '{task['name']}' when {when!r}: {exc}") from None

    def store_artifact(self, task: str, artifact: dict[str, Any], source: Path, key: str) -> None:
        """Keep an output artifact as Argo's repository would: a file keeps its name; a
        key-only one (`key`: its resolved `s3.key`) lives at that key."""
        if key:
            copy_path(source, self.repository(key))
            return
        dest = self.run_dir / "artifacts" / task / artifact["name"]
        if source.is_file():
            dest = dest / source.name
        copy_path(source, dest)
        self.stored[(task, artifact["name"])] = dest

    def repository(self, key: str) -> Path:
        """Where the artifact repository's `key` lives on this machine."""
        path = PurePosixPath(key)
        if path.is_absolute() or ".." in path.parts:
            raise UsageError(f"local runner: artifact key {key!r} leaves the repository")
        return self.run_dir / "repository" / path

    def run_task(self, task: dict[str, Any]) -> TaskResult:
        """Run one task's container template to its end (with its retries)."""
        name: str = task["name"]
        template = self.templates[task["template"]]
        container = template["container"]
        workdir = _Workdir(
            template["name"],
            PurePosixPath(container.get("workingDir", "/")),
            self.run_dir / "tasks" / name,
        )
        workdir.host_dir.mkdir(parents=True, exist_ok=True)
        scope = self._task_scope(task, template, workdir)
        argv = [self.env.python_executable] + [
            substitute(a, scope) for a in [*container["command"][1:], *container.get("args", [])]
        ]
        step_env = self._step_env(name, container, scope)
        if template.get("daemon"):
            self.daemons[name] = Daemon(
                argv, step_env, workdir.host_dir, f"[{name}]", self.env.echo
            )
            return TaskResult(name, "Daemoned", None, 1)
        if "timeout" in template:  # not enforced (no Pending here), but it must resolve
            _duration_s(substitute(template["timeout"], scope))
        exit_code, message, attempts = self._attempts(
            name, template, scope, argv, step_env, workdir.host_dir
        )
        values, exit_code, message = self._outputs(
            name, template, workdir, scope, (exit_code, message)
        )
        self._record_metrics(template, scope, values)
        phase = "Succeeded" if exit_code == 0 else "Failed"
        return TaskResult(name, phase, exit_code, attempts, values, message)

    def _task_scope(
        self, task: dict[str, Any], template: dict[str, Any], workdir: _Workdir
    ) -> dict[str, str]:
        """The DAG scope plus the template's inputs (input artifacts copied in place) and its
        output artifact paths."""
        name = task["name"]
        outer = self.global_scope()
        scope = dict(outer)
        arguments = task.get("arguments", {})
        given = {
            p["name"]: self.resolve(name, p.get("value", ""), outer)
            for p in arguments.get("parameters", [])
        }
        for param in template.get("inputs", {}).get("parameters", []):
            value = given.get(param["name"], param.get("value", param.get("default")))
            if value is None:
                raise UsageError(f"local runner: task '{name}' gets no input '{param['name']}'")
            scope[f"inputs.parameters.{param['name']}"] = value
        sources = {a["name"]: a for a in arguments.get("artifacts", [])}
        for artifact in template.get("inputs", {}).get("artifacts", []):
            path = workdir.host(artifact["path"])
            if "s3" in artifact:  # key-only: from the repository (a prefix: its directory)
                stored_at = self.repository(self.resolve(name, artifact["s3"]["key"], scope))
                if stored_at.exists():
                    copy_path(stored_at, path)
                    scope[f"inputs.artifacts.{artifact['name']}.path"] = str(path)
                elif not artifact.get("optional"):
                    raise UsageError(
                        f"local runner: task '{name}' input artifact '{artifact['name']}': "
                        f"no key {artifact['s3']['key']} in the artifact repository"
                    )
                continue
            if "raw" in artifact:  # its text, substituted with the inputs like any field
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.resolve(name, artifact["raw"]["data"], scope))
                scope[f"inputs.artifacts.{artifact['name']}.path"] = str(path)
                continue
            source = sources.get(artifact["name"], {})
            ref = source.get("from", "")
            producer = ref.removeprefix("{{tasks.").removesuffix("}}").split(".outputs.artifacts.")
            stored = self.stored.get((producer[0], producer[-1]))
            if stored is None:
                # Argo passes nothing for an optional argument it cannot resolve, and runs
                # the step without an optional input.
                if artifact.get("optional") and source.get("optional", True):
                    continue
                raise UsageError(
                    f"local runner: task '{name}' input artifact '{artifact['name']}' from "
                    f"{ref or '(nothing)'} does not exist"
                )
            copy_path(stored, path)
            scope[f"inputs.artifacts.{artifact['name']}.path"] = str(path)
        for artifact in template.get("outputs", {}).get("artifacts", []):
            scope[f"outputs.artifacts.{artifact['name']}.path"] = str(
                workdir.host(artifact["path"])
            )
        return scope

    def _step_env(
        self, task: str, container: dict[str, Any], scope: Mapping[str, str]
    ) -> dict[str, str]:
        """This environment plus the container's `env`; a Secret's stand-in is the
        same-named variable here, and an optional Secret that is absent leaves it unset."""
        step_env = dict(self.env.environ)
        for var in container.get("env", []):
            if "value" in var:
                step_env[var["name"]] = substitute(var["value"], scope)
                continue
            ref = var["valueFrom"]["secretKeyRef"]
            if var["name"] not in self.env.environ and not ref.get("optional", False):
                raise UsageError(
                    f"local runner: task '{task}' needs Secret {ref['name']}/{ref['key']}: "
                    f"set ${var['name']} in the environment"
                )
        return step_env

    def _attempts(
        self,
        name: str,
        template: dict[str, Any],
        scope: Mapping[str, str],
        argv: list[str],
        step_env: dict[str, str],
        workdir: Path,
    ) -> tuple[int, str, int]:
        """Attempts as the controller makes them: maxDuration counts from the first attempt's
        start; no retry whose backoff would end past it, and retry attempts get only what
        is left of it as their deadline. Returns (exit code, message, attempts)."""
        deadline_text = template.get("activeDeadlineSeconds")
        step_deadline = (
            float(substitute(str(deadline_text), scope)) if deadline_text is not None else None
        )
        retry = _Retry.of(template, lambda text: substitute(text, scope))
        delay = retry.delay_s
        first_start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            left = retry.max_duration_s - (time.monotonic() - first_start)
            deadline = step_deadline if attempt == 1 else min(step_deadline or left, left)
            budget = min(deadline or float("inf"), self.deadline - time.monotonic())
            exit_code, message = run_process(
                argv, step_env, workdir, budget, f"[{name}]", self.env.echo
            )
            if exit_code == 0 or attempt > retry.limit or not retry.wanted(exit_code):
                return exit_code, message, attempt
            if time.monotonic() - first_start + delay > retry.max_duration_s:
                message += (
                    f"; no retry: backoff would exceed maxDuration ({retry.max_duration_s:.0f} s)"
                )
                return exit_code, message, attempt
            self.env.echo(
                f"[{name}] exit {exit_code}; retry {attempt}/{retry.limit} in {delay:.0f} s"
            )
            time.sleep(delay)
            delay *= retry.factor

    def _outputs(
        self,
        name: str,
        template: dict[str, Any],
        workdir: _Workdir,
        scope: Mapping[str, str],
        ended: tuple[int, str],
    ) -> tuple[dict[str, str], int, str]:
        """Output parameters from their files (or defaults) and artifacts into the store, as
        the wait container saves them; a missing required one fails the task. `ended`: the
        step's exit code and message."""
        exit_code, message = ended
        outputs = template.get("outputs", {})
        values: dict[str, str] = {}
        for param in outputs.get("parameters", []):
            path = workdir.host(param["valueFrom"]["path"])
            if path.is_file():
                values[param["name"]] = path.read_text()
            elif "default" in param["valueFrom"]:
                values[param["name"]] = param["valueFrom"]["default"]
            elif exit_code == 0:
                exit_code, message = 1, f"output parameter file {path} was not written"
        for artifact in outputs.get("artifacts", []):
            path = workdir.host(artifact["path"])
            if path.exists():
                key = artifact.get("s3", {}).get("key", "")
                self.store_artifact(name, artifact, path, self.resolve(name, key, scope))
            elif not artifact.get("optional"):
                # Argo's wait container fails on a required output whatever the step's exit
                # (executor.go saveArtifact); the node message stays the step's own when it
                # failed (operator.go inferFailedReason prefers the main container).
                missing = f"output artifact {artifact['path']} was not written"
                self.env.echo(f"[{name}] wait: {missing}")
                if exit_code == 0:
                    exit_code, message = 1, missing
        return values, exit_code, message

    def _record_metrics(
        self, template: dict[str, Any], scope: dict[str, str], values: dict[str, str]
    ) -> None:
        with_outputs = dict(scope)
        with_outputs.update({f"outputs.parameters.{k}": v for k, v in values.items()})
        for metric in template.get("metrics", {}).get("prometheus", []):
            try:
                when = metric.get("when")
                if when and evaluate(substitute(when, with_outputs), {}) is not True:
                    continue
                value = float(substitute(metric["gauge"]["value"], with_outputs))
            except (ExprError, ValueError):
                continue  # Argo emits no value then either (it flags a MetricsError).
            self.metrics[metric["name"]] = value

    def run_group(self, task: dict[str, Any]) -> TaskResult:
        """A `withSequence` task: its instances `name(i:i)` at once, `{{item}}` = i; the
        group succeeds when every instance did (Argo's TaskGroup node)."""
        name = task["name"]
        count = int(self.resolve(name, str(task["withSequence"]["count"]), self.global_scope()))
        instances = []
        for i in range(count):
            instance = {k: v for k, v in task.items() if k != "withSequence"}
            instance["name"] = f"{name}({i}:{i})"
            arguments = instance.get("arguments", {})
            instance["arguments"] = {
                **arguments,
                "parameters": [
                    {**p, "value": p.get("value", "").replace("{{item}}", str(i))}
                    for p in arguments.get("parameters", [])
                ],
            }
            instances.append(instance)
        with ThreadPoolExecutor(max(1, count)) as pool:
            results = list(pool.map(self.run_task, instances))
        for result in results:
            self.results[result.name] = result
        failed = [r.name for r in results if r.phase != "Succeeded"]
        phase = "Failed" if failed or not results else "Succeeded"
        return TaskResult(name, phase, None, 1, message=", ".join(f"{n} failed" for n in failed))

    def stop_daemons(self) -> None:
        """The DAG ended: its daemons' pods are killed."""
        for name, daemon in self.daemons.items():
            if daemon.stop():
                self.env.echo(f"[{name}] daemon stopped (the DAG ended)")

    def run_dag(self, tasks: list[dict[str, Any]]) -> None:
        """Every task in dependency order: omitted by `depends`, skipped by `when`, or run."""
        try:
            self._run_dag(tasks)
        finally:
            self.stop_daemons()

    def _run_dag(self, tasks: list[dict[str, Any]]) -> None:
        for task in _topological(tasks):
            name = task["name"]
            depends = task.get("depends")
            phases = {k: r.phase for k, r in self.results.items()}
            if depends and not evaluate_depends(depends, phases):
                self.results[name] = TaskResult(name, "Omitted", None, 0)
                self.env.echo(f"[{name}] omitted (depends: {depends})")
                continue
            if self.skipped_by_when(task):
                self.results[name] = TaskResult(name, "Skipped", None, 0)
                self.env.echo(f"[{name}] skipped (when: {task['when']})")
                continue
            self.env.echo(f"[{name}] started")
            started = time.monotonic()
            result = self.run_group(task) if "withSequence" in task else self.run_task(task)
            self.results[name] = result
            note = f" ({result.message})" if result.message else ""
            self.env.echo(f"[{name}] {result.phase} in {time.monotonic() - started:.1f} s{note}")


def _workflow_params(manifest: Manifest, overrides: Mapping[str, str]) -> dict[str, str]:
    declared = manifest["spec"].get("arguments", {}).get("parameters", [])
    params = {p["name"]: p.get("value", "") for p in declared}
    enums = {p["name"]: p["enum"] for p in declared if "enum" in p}
    for key, value in overrides.items():
        if key not in params:
            raise UsageError(f"local runner: unknown workflow parameter '{key}'")
        params[key] = value
    for key, allowed in enums.items():
        if params[key] not in allowed:
            raise UsageError(f"local runner: parameter {key}={params[key]!r} not in {allowed}")
    return params


def run_template(
    manifest: Manifest, arguments: Mapping[str, str], run_dir: Path, env: RunnerEnv
) -> RunResult:
    """Execute the manifest's entrypoint DAG locally; steps' exit codes decide task phases."""
    check_supported(manifest)
    env.echo(
        "local runner: not emulated on this machine (a cluster run may differ): "
        + ", ".join(cluster_only_fields(manifest))
    )
    params = _workflow_params(manifest, arguments)
    run = _Run(manifest, params, run_dir, env)
    spec = manifest["spec"]
    tasks = run.templates[spec["entrypoint"]]["dag"]["tasks"]
    mutexes = [
        substitute(m["name"], run.global_scope())
        for m in spec.get("synchronization", {}).get("mutexes", [])
    ]
    with hold_mutexes(mutexes, env.lock_dir, env.echo):
        run.deadline = time.monotonic() + float(spec.get("activeDeadlineSeconds", float("inf")))
        run.run_dag(tasks)
    return RunResult(_effective_phases(tasks, run.results), run.results, run.metrics, run_dir)
