"""Run a rendered WorkflowTemplate on this machine: the same dict Argo gets, no cluster.

Each DAG task's container `command`/`args` runs as a subprocess with Argo's substitutions
(`{{workflow.parameters.*}}`, `{{inputs.parameters.*}}`, `{{inputs.artifacts.*.path}}`,
`{{outputs.artifacts.*.path}}`, `{{=expr}}` tags of the subset in `argo_expr`), output parameters
are read from their files, and artifacts are handed between tasks through a run directory:

    <run_dir>/tasks/<task>/       the container's workingDir (every declared path lives under it)
    <run_dir>/artifacts/<task>/<artifact>   what Argo would store in the artifact repository

It supports exactly the subset the project's templates use and refuses anything else by name
(`UnsupportedFeature`), so a manifest change that the local run cannot mirror fails loudly
instead of running something different. Independent tasks run one after another; retries with
backoff and `backoff.maxDuration`, activeDeadlineSeconds, `depends` and `when` expressions,
`{{tasks.X.exitCode}}`/`{{tasks.X.status}}`, optional artifacts, output-parameter defaults,
the workflow phase from the DAG's leaves, and the workflow mutex (a file lock) behave as in
Argo v4.0.5. A task argument or `when` that names a `tasks.*` value the run does not have is an
error here: Argo would requeue that task until the workflow deadline.

Fields a cluster acts on but this machine cannot (images, resources, affinity, security
contexts, `podSpecPatch`, template `timeout`, which only bounds a Pending pod, service account,
pod GC, TTL, artifact repository, Prometheus export of metrics) are accepted and have no local
effect; `cluster_only_fields` names those a manifest uses, and `run_template` says so in one
line before it starts, so a green local run is never mistaken for a cluster run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from steps.errors import UsageError
from workflows.argo_expr import ExprError, depends_tasks, evaluate, evaluate_depends, substitute

__all__ = [
    "RunResult",
    "RunnerEnv",
    "TaskResult",
    "UnsupportedFeature",
    "check_supported",
    "cluster_only_fields",
    "default_lock_dir",
    "run_template",
]

Manifest = dict[str, Any]

#: Heartbeat after this many seconds without output from a running step.
_QUIET_HEARTBEAT_S = 15.0


class UnsupportedFeature(UsageError):
    """The manifest uses an Argo feature the local runner does not implement."""


@dataclass(frozen=True)
class RunnerEnv:
    """How steps run locally: `python` in a command means `python_executable`."""

    python_executable: str
    environ: Mapping[str, str]
    echo: Callable[[str], None]
    lock_dir: Path


@dataclass(frozen=True)
class TaskResult:
    name: str
    phase: str  # Succeeded | Failed | Skipped (`when` false) | Omitted (`depends` false)
    exit_code: int | None
    attempts: int
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    phase: str  # Succeeded | Failed
    tasks: dict[str, TaskResult]
    metrics: dict[str, float]
    run_dir: Path


# ---------------------------------------------------------------------------------------------
# Supported subset: key -> nested spec (a dict), True (supported leaf) or None (accepted,
# cluster-only: no local effect, reported by `cluster_only_fields`).

_PARAM = {"name": True, "value": True, "default": True, "description": True, "enum": True}
_SUBSET: dict[str, Any] = {
    "apiVersion": True,
    "kind": True,
    "metadata": True,  # the object's own name and labels: nothing to run
    "spec": {
        "entrypoint": True,
        "arguments": {"parameters": _PARAM},
        "activeDeadlineSeconds": True,
        "synchronization": {"mutexes": {"name": True}},
        "serviceAccountName": None,
        "podGC": None,
        "ttlStrategy": None,
        "artifactRepositoryRef": None,
        "podMetadata": None,
        "securityContext": None,
        "podSpecPatch": None,
        "templates": {
            "name": True,
            "inputs": {
                "parameters": _PARAM,
                "artifacts": {"name": True, "path": True, "optional": True},
            },
            "outputs": {
                "parameters": {"name": True, "valueFrom": {"path": True, "default": True}},
                "artifacts": {
                    "name": True,
                    "path": True,
                    "optional": True,
                    "archive": {"none": True},
                },
            },
            "container": {
                "command": True,
                "args": True,
                "workingDir": True,
                "env": {
                    "name": True,
                    "value": True,
                    "valueFrom": {"secretKeyRef": {"name": True, "key": True, "optional": True}},
                },
                "image": None,
                "imagePullPolicy": None,
                "resources": None,
                "securityContext": None,
            },
            "dag": {
                "tasks": {
                    "name": True,
                    "template": True,
                    "depends": True,
                    "when": True,
                    "arguments": {
                        "parameters": {"name": True, "value": True},
                        "artifacts": {"name": True, "from": True, "optional": True},
                    },
                }
            },
            "retryStrategy": {
                "limit": True,
                "retryPolicy": True,
                "expression": True,
                "backoff": {"duration": True, "factor": True, "maxDuration": True},
            },
            "activeDeadlineSeconds": True,
            "timeout": None,
            "metrics": {
                "prometheus": {
                    "name": True,
                    "help": True,
                    "when": True,
                    "labels": {"key": True, "value": True},
                    "gauge": {"value": True, "realtime": True},
                }
            },
            "affinity": None,
            "serviceAccountName": None,
            "metadata": None,
        },
    },
}


#: What a cluster-only field means for a local run, where it is not obvious.
_CLUSTER_ONLY_NOTES = {
    "timeout": "timeout (no Pending phase here)",
    "securityContext": "securityContext (steps run as this user)",
    "metadata": "pod metadata",
}


def _check(node: Any, spec: Any, where: str, cluster_only: set[str] | None = None) -> None:
    if spec is True:
        return
    if spec is None:
        if cluster_only is not None:
            cluster_only.add(where.rpartition(".")[2])
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check(item, spec, f"{where}[{i}]", cluster_only)
        return
    if not isinstance(node, dict):
        raise UnsupportedFeature(f"local runner: {where} is not a mapping")
    for key, value in node.items():
        if key not in spec:
            raise UnsupportedFeature(
                f"local runner: '{key}' at {where or '(root)'} is not supported "
                f"(supported there: {', '.join(sorted(spec))})"
            )
        _check(value, spec[key], f"{where}.{key}" if where else key, cluster_only)


def cluster_only_fields(manifest: Manifest) -> list[str]:
    """The fields of `manifest` a cluster acts on and the local runner does not (sorted)."""
    found: set[str] = set()
    _check(manifest, _SUBSET, "", found)
    fields = [_CLUSTER_ONLY_NOTES.get(name, name) for name in sorted(found)]
    if any("metrics" in t for t in manifest["spec"].get("templates", [])):
        fields.append("metrics export (gauges are computed here, never sent to Prometheus)")
    return fields


def check_supported(manifest: Manifest) -> None:
    """Raise `UnsupportedFeature` naming the first field outside the supported subset."""
    _check(manifest, _SUBSET, "")
    spec = manifest["spec"]
    for template in spec.get("templates", []):
        name = template.get("name", "?")
        kinds = [k for k in ("container", "dag") if k in template]
        if len(kinds) != 1:
            raise UnsupportedFeature(
                f"local runner: template '{name}' must be a container or a dag"
            )
        container = template.get("container")
        if container is not None and (container.get("command") or [None])[0] != "python":
            raise UnsupportedFeature(
                f"local runner: template '{name}' command must start with 'python' "
                "(steps run as python -m steps.<name>)"
            )
        policy = template.get("retryStrategy", {}).get("retryPolicy", "Always")
        if policy not in ("Always", "OnFailure", "OnError"):
            raise UnsupportedFeature(
                f"local runner: template '{name}' retryPolicy '{policy}' is not supported"
            )
    entry = _templates(manifest).get(spec.get("entrypoint", ""))
    if entry is None or "dag" not in entry:
        raise UnsupportedFeature("local runner: the entrypoint must name a dag template")
    for task in entry["dag"]["tasks"]:
        target = _templates(manifest).get(task["template"])
        if target is None or "container" not in target:
            raise UnsupportedFeature(
                f"local runner: task '{task['name']}' must call a container template "
                "(nested dags are not supported)"
            )


def _templates(manifest: Manifest) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"].get("templates", [])}


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


# ---------------------------------------------------------------------------------------------
# I/O: locks, processes, files


@contextlib.contextmanager
def _mutexes(names: list[str], env: RunnerEnv) -> Iterator[None]:
    """Hold a file lock per Argo mutex name for the whole run, as the controller would."""
    env.lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name in names:
            path = env.lock_dir / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
            handle = stack.enter_context(path.open("w"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                env.echo(f"waiting for mutex {name!r}: another run uses this target")
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stream(proc: subprocess.Popen[str], prefix: str, env: RunnerEnv) -> None:
    """Echo a step's output line by line; say it is alive when it is quiet for a while."""
    last = [time.monotonic()]
    started = time.monotonic()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            last[0] = time.monotonic()
            env.echo(f"{prefix} {line.rstrip()}")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(timeout=1.0)
        if time.monotonic() - last[0] >= _QUIET_HEARTBEAT_S:
            env.echo(f"{prefix} still running ({time.monotonic() - started:.0f} s)")
            last[0] = time.monotonic()


def _copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(source, dest)


class _Run:
    """One execution of a manifest: state shared by its tasks."""

    def __init__(
        self, manifest: Manifest, params: dict[str, str], run_dir: Path, env: RunnerEnv
    ) -> None:
        self.templates = _templates(manifest)
        self.params = params
        self.run_dir = run_dir
        self.env = env
        self.results: dict[str, TaskResult] = {}
        self.stored: dict[tuple[str, str], Path] = {}
        self.metrics: dict[str, float] = {}
        self.deadline = float("inf")

    def global_scope(self) -> dict[str, str]:
        """Workflow parameters and what finished tasks expose, as Argo's DAG scope: status
        always, exitCode only for a task whose container ran, outputs it produced."""
        scope = {f"workflow.parameters.{k}": v for k, v in self.params.items()}
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

    def store_artifact(self, task: str, name: str, source: Path) -> None:
        """Keep an output artifact as Argo's repository would: a file keeps its name."""
        dest = self.run_dir / "artifacts" / task / name
        if source.is_file():
            dest = dest / source.name
        _copy(source, dest)
        self.stored[(task, name)] = dest

    def run_task(self, task: dict[str, Any]) -> TaskResult:
        name: str = task["name"]
        template = self.templates[task["template"]]
        container = template["container"]
        workdir = self.run_dir / "tasks" / name
        workdir.mkdir(parents=True, exist_ok=True)
        working_dir = PurePosixPath(container.get("workingDir", "/"))

        def host(path: str) -> Path:
            pure = PurePosixPath(path)
            if not pure.is_relative_to(working_dir):
                raise UnsupportedFeature(
                    f"local runner: template '{template['name']}' path {path} is outside its "
                    f"workingDir {working_dir}"
                )
            return workdir / pure.relative_to(working_dir)

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
            _copy(stored, host(artifact["path"]))
            scope[f"inputs.artifacts.{artifact['name']}.path"] = str(host(artifact["path"]))
        outputs = template.get("outputs", {})
        for artifact in outputs.get("artifacts", []):
            scope[f"outputs.artifacts.{artifact['name']}.path"] = str(host(artifact["path"]))

        command = [substitute(c, scope) for c in container["command"]]
        command[0] = self.env.python_executable
        argv = command + [substitute(a, scope) for a in container.get("args", [])]
        step_env = dict(self.env.environ)
        for var in container.get("env", []):
            if "value" in var:
                step_env[var["name"]] = substitute(var["value"], scope)
                continue
            ref = var["valueFrom"]["secretKeyRef"]
            # The local stand-in for a Kubernetes Secret is the same-named variable in this
            # environment; an optional Secret that is absent leaves the variable unset.
            if var["name"] not in self.env.environ and not ref.get("optional", False):
                raise UsageError(
                    f"local runner: task '{name}' needs Secret {ref['name']}/{ref['key']}: "
                    f"set ${var['name']} in the environment"
                )
        deadline_text = template.get("activeDeadlineSeconds")
        step_deadline = (
            float(substitute(str(deadline_text), scope)) if deadline_text is not None else None
        )
        if "timeout" in template:  # not enforced (no Pending here), but it must resolve
            _duration_s(substitute(template["timeout"], scope))

        retry = template.get("retryStrategy")
        limit = int(retry.get("limit", 0)) if retry else 0
        backoff = (retry or {}).get("backoff", {})
        delay = _duration_s(backoff.get("duration", "0s"))
        factor = float(backoff.get("factor", 1))
        # Argo: counted from the first attempt's start; no retry whose backoff would end
        # past it, and retry attempts get only what is left of it as their deadline.
        max_duration = _duration_s(substitute(backoff.get("maxDuration", "inf"), scope))
        first_start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            left = max_duration - (time.monotonic() - first_start)
            deadline = step_deadline if attempt == 1 else min(step_deadline or left, left)
            exit_code, message = self._attempt(name, argv, step_env, workdir, deadline)
            if exit_code == 0 or attempt > limit:
                break
            if retry and "expression" in retry:
                variables = {"lastRetry.exitCode": str(exit_code), "lastRetry.status": "Failed"}
                if not evaluate(retry["expression"], variables):
                    break
            if time.monotonic() - first_start + delay > max_duration:
                message += f"; no retry: backoff would exceed maxDuration ({max_duration:.0f} s)"
                break
            self.env.echo(f"[{name}] exit {exit_code}; retry {attempt}/{limit} in {delay:.0f} s")
            time.sleep(delay)
            delay *= factor

        values: dict[str, str] = {}
        for param in outputs.get("parameters", []):
            path = host(param["valueFrom"]["path"])
            if path.is_file():
                values[param["name"]] = path.read_text()
            elif "default" in param["valueFrom"]:
                values[param["name"]] = param["valueFrom"]["default"]
            elif exit_code == 0:
                exit_code, message = 1, f"output parameter file {path} was not written"
        for artifact in outputs.get("artifacts", []):
            path = host(artifact["path"])
            if path.exists():
                self.store_artifact(name, artifact["name"], path)
            elif not artifact.get("optional"):
                # Argo's wait container fails on a required output whatever the step's exit
                # (executor.go saveArtifact); the node message stays the step's own when it
                # failed (operator.go inferFailedReason prefers the main container).
                missing = f"output artifact {artifact['path']} was not written"
                self.env.echo(f"[{name}] wait: {missing}")
                if exit_code == 0:
                    exit_code, message = 1, missing
        phase = "Succeeded" if exit_code == 0 else "Failed"
        result = TaskResult(name, phase, exit_code, attempt, values, message)
        self._record_metrics(template, scope, values)
        return result

    def _attempt(
        self,
        name: str,
        argv: list[str],
        step_env: dict[str, str],
        workdir: Path,
        step_deadline: float | None,
    ) -> tuple[int, str]:
        started = time.monotonic()
        budget = min(step_deadline or float("inf"), self.deadline - started)
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=step_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        timer = threading.Timer(budget, proc.kill) if budget != float("inf") else None
        if timer is not None:
            timer.start()
        try:
            _stream(proc, f"[{name}]", self.env)
            exit_code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        elapsed = time.monotonic() - started
        if exit_code < 0 and elapsed >= budget - 1:
            return 1, f"killed after activeDeadlineSeconds ({budget:.0f} s)"
        return exit_code, f"exit code {exit_code}" if exit_code else ""

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
    with _mutexes(mutexes, env):
        run.deadline = time.monotonic() + float(spec.get("activeDeadlineSeconds", float("inf")))
        for task in _topological(tasks):
            name = task["name"]
            depends = task.get("depends")
            phases = {k: r.phase for k, r in run.results.items()}
            if depends and not evaluate_depends(depends, phases):
                run.results[name] = TaskResult(name, "Omitted", None, 0)
                env.echo(f"[{name}] omitted (depends: {depends})")
                continue
            if run.skipped_by_when(task):
                run.results[name] = TaskResult(name, "Skipped", None, 0)
                env.echo(f"[{name}] skipped (when: {task['when']})")
                continue
            env.echo(f"[{name}] started")
            started = time.monotonic()
            result = run.run_task(task)
            run.results[name] = result
            note = f" ({result.message})" if result.message else ""
            env.echo(f"[{name}] {result.phase} in {time.monotonic() - started:.1f} s{note}")
    return RunResult(_effective_phases(tasks, run.results), run.results, run.metrics, run_dir)


def default_lock_dir() -> Path:
    """Per-user directory for the local stand-in of Argo mutexes."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / "llm-baseline-bench-locks"
