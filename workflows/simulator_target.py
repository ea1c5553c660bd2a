"""A GPU-free target for a first in-cluster run: the simulator as a Deployment and a Service.

`python -m workflows.baseline render --kind simulator | kubectl apply -f -`, then submit with
`--base-url http://llm-simulator.<target_namespace>:8000`. Why it looks the way it does:
- Its pod carries the benchmark's `target_labels`, so the readiness step's zone check finds it and
  the load pod's required zone affinity schedules next to it, exactly as with a model server.
  (The Service selects on its own name label only, never on the model server's labels.)
- It serves `model_name`, so readiness and the load step need no other change.
- An init container (the tokenizer step's image) builds the Qwen tokenizer offline into an
  emptyDir, so the simulator counts prompt tokens exactly; no Hub access is needed.
- It runs as the images' non-root user under the Pod Security Standards "restricted" profile
  (workflows.pod_security, as every pod of the benchmark), with the same latency model as
  `make run` (TTFT 50 ms, ITL 10 ms), and /health as its readiness probe.
It is never part of `render --kind all`: a GitOps tree must not deploy a fake model server.
"""

from __future__ import annotations

from typing import Any

from steps.errors import UsageError
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.pod_security import container_security_context, pod_security_context

__all__ = ["SIMULATOR_NAME", "SIMULATOR_PORT", "build_simulator_target"]

SIMULATOR_NAME = "llm-simulator"
SIMULATOR_PORT = 8000
_NAME_LABEL = "app.kubernetes.io/name"
_TOKENIZER_DIR = "/tokenizer"
#: What the Service selects on: the simulator's own name label, never the model server's.
_SELECTOR = {_NAME_LABEL: SIMULATOR_NAME}


def _container(options: TemplateOptions, step: str, args: list[str]) -> dict[str, Any]:
    return {
        "name": step,
        "image": options.image(step),
        "imagePullPolicy": options.image_pull_policy,
        "args": args,
        "volumeMounts": [{"name": "tokenizer", "mountPath": _TOKENIZER_DIR}],
        "securityContext": container_security_context(),
    }


def _pod_labels(params: BaselineParams) -> dict[str, str]:
    """The model pods' labels (what readiness and the load's affinity select) plus the
    Service's own name label, which the target labels must leave to it."""
    target = params.target_match_labels
    if target.get(_NAME_LABEL, SIMULATOR_NAME) != SIMULATOR_NAME:
        raise UsageError(
            f"target_labels sets {_NAME_LABEL}={target[_NAME_LABEL]}, the label the simulator "
            "target's Service selects on; select the model pods by another label"
        )
    return {**target, **_SELECTOR}


def _metadata(params: BaselineParams) -> dict[str, Any]:
    """Fresh dicts on every call: no YAML anchors in the rendered text."""
    return {"name": SIMULATOR_NAME, "namespace": params.target_namespace, "labels": {**_SELECTOR}}


def _simulator_container(params: BaselineParams, options: TemplateOptions) -> dict[str, Any]:
    """The simulator on SIMULATOR_PORT, `make run`'s latency model, /health as readiness."""
    simulator = _container(
        options,
        "simulator",
        [
            "--host", "0.0.0.0", "--port", str(SIMULATOR_PORT),
            "--model", params.model_name,
            "--tokenizer", f"{_TOKENIZER_DIR}/qwen",
            "--ttft-ms", "50", "--itl-ms", "10",
        ],
    )  # fmt: skip
    simulator["ports"] = [{"name": "http", "containerPort": SIMULATOR_PORT}]
    simulator["readinessProbe"] = {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 2,
    }
    simulator["resources"] = {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    return simulator


def build_simulator_target(
    params: BaselineParams, options: TemplateOptions
) -> list[dict[str, Any]]:
    """Deployment + Service in `params.target_namespace`, serving `params.model_name`."""
    tokenizer = _container(
        options, "tokenizer", ["--tokenizer", "offline:qwen", "--out", f"{_TOKENIZER_DIR}/qwen"]
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(params),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {**_SELECTOR}},
            "template": {
                "metadata": {"labels": _pod_labels(params)},
                "spec": {
                    "securityContext": pod_security_context(),
                    "initContainers": [tokenizer],
                    "containers": [_simulator_container(params, options)],
                    "volumes": [{"name": "tokenizer", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(params),
        "spec": {
            "selector": {**_SELECTOR},
            "ports": [{"name": "http", "port": SIMULATOR_PORT, "targetPort": "http"}],
        },
    }
    return [deployment, service]
