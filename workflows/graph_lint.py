"""Checks Argo's JSON Schema cannot express, done offline on a rendered manifest.

Argo Server's lint (`workflow/validate`) catches these only on a cluster: a `depends` naming no
task, an undeclared `{{workflow.parameters.X}}`, an artifact `from` pointing at an output nobody
declares, a volume mount without a volume. The project rules are checked here too: the load pod
carries the zone podAffinity WITH `namespaces` (the chart's bug), in the mode readiness is told
(`--zone-affinity`: required, preferred with weight 100, or none), and is never retried; every
step has a template `timeout` (with a unit, as Argo's lint requires; never on a dag). One check
is about a runtime trap no lint of Argo's catches: a task naming `{{tasks.X.exitCode}}` that
may run when X never ran.
"""

from __future__ import annotations

import json
import re
from typing import Any

from steps.errors import BenchError
from workflows.argo_expr import ExprError, depends_results, depends_tasks

__all__ = ["lint_run", "lint_template", "require_clean"]

_WF_PARAM_RE = re.compile(r"workflow\.parameters\.([A-Za-z0-9_-]+)")
_TEMPLATE_VAR_RE = re.compile(r"(inputs|outputs)\.(parameters|artifacts)\.([A-Za-z0-9_-]+)")
_FROM_RE = re.compile(r"^\{\{tasks\.([A-Za-z0-9_-]+)\.outputs\.artifacts\.([A-Za-z0-9_-]+)\}\}$")
_ZONE_KEY = "topology.kubernetes.io/zone"
_EXIT_CODE_RE = re.compile(r"tasks\.([A-Za-z0-9_-]+)\.exitCode")


def _names(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["name"] for item in items or []]


def _io_names(template: dict[str, Any], side: str, kind: str) -> set[str]:
    return set(_names(template.get(side, {}).get(kind)))


def _lint_dag(template: dict[str, Any], templates: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    tasks = template["dag"].get("tasks", [])
    names = _names(tasks)
    if len(set(names)) != len(names):
        problems.append(f"dag '{template['name']}': duplicate task names {names}")
    by_name = {t["name"]: t for t in tasks}
    for task in tasks:
        where = f"task '{task['name']}'"
        target = templates.get(task.get("template", ""))
        if target is None:
            problems.append(f"{where}: template '{task.get('template')}' does not exist")
            continue
        try:
            deps = depends_tasks(task.get("depends", ""))
        except ExprError as exc:
            problems.append(f"{where}: {exc}")
            deps = set()
        problems += [f"{where}: depends names unknown task '{d}'" for d in deps - set(by_name)]
        problems += _lint_exit_codes(task, where)
        arguments = task.get("arguments", {})
        given_params = set(_names(arguments.get("parameters")))
        for param in target.get("inputs", {}).get("parameters", []):
            if (
                param["name"] not in given_params
                and "value" not in param
                and "default" not in param
            ):
                problems.append(f"{where}: input parameter '{param['name']}' is not supplied")
        problems += [
            f"{where}: argument '{n}' is not an input of '{target['name']}'"
            for n in given_params - _io_names(target, "inputs", "parameters")
        ]
        problems += _lint_artifact_arguments(task, target, templates, by_name)
    return problems


def _lint_artifact_arguments(
    task: dict[str, Any],
    target: dict[str, Any],
    templates: dict[str, Any],
    by_name: dict[str, dict[str, Any]],
) -> list[str]:
    """Required input artifacts supplied (a raw artifact carries its own data, as Argo's
    HasLocationOrKey counts it); each `from` names an output an ancestor declares."""
    where = f"task '{task['name']}'"
    problems: list[str] = []
    given_artifacts = {a["name"]: a for a in task.get("arguments", {}).get("artifacts", [])}
    for artifact in target.get("inputs", {}).get("artifacts", []):
        supplied = artifact["name"] in given_artifacts or "raw" in artifact
        if not supplied and not artifact.get("optional"):
            problems.append(f"{where}: input artifact '{artifact['name']}' is not supplied")
    for name, artifact in given_artifacts.items():
        match = _FROM_RE.match(artifact.get("from", ""))
        if match is None:
            problems.append(f"{where}: artifact '{name}' needs from: {{{{tasks.T.outputs...}}}}")
            continue
        producer, output = match.groups()
        source = templates.get(by_name.get(producer, {}).get("template", ""))
        if source is None:
            problems.append(f"{where}: artifact '{name}' comes from unknown task '{producer}'")
        elif output not in _io_names(source, "outputs", "artifacts"):
            problems.append(
                f"{where}: artifact '{name}' from task '{producer}', which declares no "
                f"output artifact '{output}'"
            )
        elif producer not in _ancestors(task["name"], by_name):
            problems.append(f"{where}: artifact '{name}' from '{producer}', not an ancestor")
    return problems


def _lint_exit_codes(task: dict[str, Any], where: str) -> list[str]:
    """`{{tasks.X.exitCode}}` exists only once X's container has exited. A task that may run
    right after X failed, was skipped or omitted (its `depends` admits more than
    `X.Succeeded`) and names it in `when` or its arguments is requeued by Argo until the
    workflow deadline when X never ran (dag.go resolveDependencyReferences)."""
    used = set(_EXIT_CODE_RE.findall(json.dumps([task.get("when"), task.get("arguments")])))
    try:
        admitted = depends_results(task.get("depends", ""))
    except ExprError:
        return []  # reported with the depends check
    return [
        f"{where}: uses tasks.{name}.exitCode but may run when '{name}' never ran (depends "
        f"admits more than {name}.Succeeded): Argo would requeue it until the deadline"
        for name in sorted(used)
        if admitted.get(name, {"Succeeded"}) != {"Succeeded"}
    ]


def _ancestors(name: str, by_name: dict[str, dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    stack = [name]
    while stack:
        for dep in depends_tasks(by_name.get(stack.pop(), {}).get("depends", "")):
            if dep not in found:
                found.add(dep)
                stack.append(dep)
    return found


def _lint_container(template: dict[str, Any], volumes: set[str]) -> list[str]:
    problems: list[str] = []
    where = f"template '{template['name']}'"
    text = json.dumps({k: v for k, v in template.items() if k != "outputs"})
    for side, kind, name in set(_TEMPLATE_VAR_RE.findall(text)):
        if name not in _io_names(template, side, kind):
            problems.append(f"{where}: uses {side}.{kind}.{name}, which it does not declare")
    for mount in template["container"].get("volumeMounts", []):
        if mount["name"] not in volumes:
            problems.append(f"{where}: volumeMount '{mount['name']}' has no volume")
    timeout = str(template.get("timeout", "")).strip()
    if not timeout:
        problems.append(f"{where}: has no timeout (nothing else bounds a pod stuck Pending)")
    elif timeout.isdigit():
        problems.append(f"{where}: timeout {timeout!r} needs a unit, e.g. 's' (Argo refuses it)")
    return problems


def _zone_affinity_mode(templates: dict[str, dict[str, Any]]) -> str:
    """The install-time `--zone-affinity` the readiness step is given (default required)."""
    args = templates.get("readiness", {}).get("container", {}).get("args", [])
    flag = "--zone-affinity"
    return str(args[args.index(flag) + 1]) if flag in args[:-1] else "required"


def _lint_load(template: dict[str, Any], mode: str) -> list[str]:
    pod_affinity = template.get("affinity", {}).get("podAffinity", {})
    required = pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    preferred = pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    terms = required if mode == "required" else [p.get("podAffinityTerm", {}) for p in preferred]
    problems = []
    if mode == "off":
        if pod_affinity:
            problems.append("template 'load': has podAffinity but readiness says zone affinity off")
    elif (mode == "preferred" and (required or any(p.get("weight") != 100 for p in preferred))) or (
        not any(
            t.get("topologyKey") == _ZONE_KEY and t.get("namespaces") and t.get("labelSelector")
            for t in terms
        )
    ):
        problems.append(
            f"template 'load': needs {mode} podAffinity (as readiness is told) on {_ZONE_KEY} "
            "with a labelSelector and namespaces (without namespaces it only matches the "
            "workflow's namespace)"
        )
    if "retryStrategy" in template:
        problems.append("template 'load': must not be retried (a retry benchmarks twice)")
    return problems


def lint_template(manifest: dict[str, Any]) -> list[str]:
    """Problems of a WorkflowTemplate (or inline Workflow) manifest; empty when clean."""
    spec = manifest["spec"]
    templates = {t["name"]: t for t in spec.get("templates", [])}
    problems: list[str] = []
    if len(templates) != len(spec.get("templates", [])):
        problems.append("duplicate template names")
    if spec.get("entrypoint") not in templates:
        problems.append(f"entrypoint '{spec.get('entrypoint')}' is not a template")
    declared = set(_names(spec.get("arguments", {}).get("parameters")))
    for name in sorted(set(_WF_PARAM_RE.findall(json.dumps(spec))) - declared):
        problems.append(f"workflow.parameters.{name} is used but not declared in spec.arguments")
    volumes = set(_names(spec.get("volumes"))) | set(
        t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])
    )
    for template in templates.values():
        if "dag" in template:
            problems += _lint_dag(template, templates)
            if "timeout" in template:
                problems.append(f"dag '{template['name']}': Argo refuses timeout on a dag")
        if "container" in template:
            problems += _lint_container(template, volumes | set(_names(template.get("volumes"))))
    if "load" in templates:
        problems += _lint_load(templates["load"], _zone_affinity_mode(templates))
    else:
        problems.append("no 'load' template")
    if not spec.get("serviceAccountName") and not templates.get("load", {}).get(
        "serviceAccountName"
    ):
        problems.append("the load pod has no service account")
    return problems


def lint_run(run_spec: dict[str, Any], template: dict[str, Any]) -> list[str]:
    """Problems of a run (Workflow or CronWorkflow spec) that references `template`."""
    problems: list[str] = []
    ref = run_spec.get("workflowTemplateRef", {}).get("name")
    if ref != template["metadata"]["name"]:
        problems.append(f"workflowTemplateRef '{ref}' is not '{template['metadata']['name']}'")
    declared = set(_names(template["spec"].get("arguments", {}).get("parameters")))
    given = set(_names(run_spec.get("arguments", {}).get("parameters")))
    problems += [f"parameter '{n}' is not set explicitly" for n in sorted(declared - given)]
    problems += [
        f"parameter '{n}' is not declared by the template" for n in sorted(given - declared)
    ]
    return problems


def require_clean(template: dict[str, Any], *runs: dict[str, Any]) -> None:
    """Refuse to emit a manifest the lint rejects (a bug here, not a user error): BenchError."""
    problems = lint_template(template) + [p for run in runs for p in lint_run(run, template)]
    if problems:
        raise BenchError(f"manifest lint: {'; '.join(problems)}")
