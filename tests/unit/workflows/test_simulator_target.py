"""`render --kind simulator`: a Deployment and Service the benchmark can target in-cluster.

No API server runs here, so each object is checked against the `kubernetes` client's own models
(tests/helpers/argo/k8s_models.py: a misspelt or misplaced key fails). The rest checks that
the pieces fit the benchmark: the load pod's zone affinity and the readiness check select the
simulator's pod, the Service selects it, and both images are Dockerfile targets.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from steps.errors import UsageError
from tests.helpers.argo.k8s_models import round_trip
from tests.helpers.dockerfile_targets import dockerfile_targets
from workflows.baseline import main
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.simulator_target import SIMULATOR_NAME, SIMULATOR_PORT, build_simulator_target
from workflows.template import build_template


def _objects(**knobs: Any) -> dict[str, dict[str, Any]]:
    objects = build_simulator_target(BaselineParams(**knobs), TemplateOptions())
    return {o["kind"]: o for o in objects}


def test_objects_survive_the_kubernetes_models_unchanged() -> None:
    objects = _objects()
    assert set(objects) == {"Deployment", "Service"}
    assert round_trip(objects["Deployment"], "V1Deployment") == objects["Deployment"]
    assert round_trip(objects["Service"], "V1Service") == objects["Service"]


def test_round_trip_catches_a_misspelt_key() -> None:
    deployment = _objects()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    assert round_trip(deployment, "V1Deployment") != deployment


def test_benchmark_selects_the_simulator_pod() -> None:
    params = BaselineParams(target_labels="app=vllm,tier=model", target_namespace="models")
    objects = {o["kind"]: o for o in build_simulator_target(params, TemplateOptions())}
    deployment, service = objects["Deployment"], objects["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "models"
    # The load pod's required zone affinity, as rendered in the template, matches the pod.
    template = build_template(params, TemplateOptions()).to_dict()
    load = next(t for t in template["spec"]["templates"] if t["name"] == "load")
    (term,) = load["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert params.target_match_labels.items() <= pod_labels.items()  # readiness zone check
    # The Service and the Deployment select the pod by its own name label only.
    selector = {"app.kubernetes.io/name": SIMULATOR_NAME}
    assert service["spec"]["selector"] == selector
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert selector.items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": port["targetPort"], "containerPort": SIMULATOR_PORT}]


def test_serves_the_model_with_the_tokenizer_built_by_the_init_container() -> None:
    spec = _objects(model_name="my-model")["Deployment"]["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    (sim,) = spec["containers"]
    out = init["args"][init["args"].index("--out") + 1]
    assert init["args"][:2] == ["--tokenizer", "offline:qwen"]
    assert sim["args"][sim["args"].index("--tokenizer") + 1] == out
    assert sim["args"][sim["args"].index("--model") + 1] == "my-model"
    mounts = {m["mountPath"] for c in (init, sim) for m in c["volumeMounts"]}
    assert all(out.startswith(path + "/") for path in mounts)
    targets = dockerfile_targets()
    for container in (init, sim):
        target = container["image"].rpartition("/")[2].partition(":")[0]
        assert target == container["name"]
        assert targets[target]["entrypoint"] == ["python", "-m", f"steps.{target}"]
        assert str(spec["securityContext"]["runAsUser"]) == targets[target]["user"]


def test_name_label_in_target_labels_is_refused() -> None:
    with pytest.raises(UsageError, match=re.escape("app.kubernetes.io/name=vllm")):
        build_simulator_target(
            BaselineParams(target_labels="app.kubernetes.io/name=vllm"), TemplateOptions()
        )


def test_render_kind_simulator_prints_it_and_all_leaves_it_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "--kind", "simulator"], {}) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["Deployment", "Service"]
    assert main(["render", "--kind", "all"], {}) == 0
    rendered = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert "Deployment" not in rendered
    assert "WorkflowTemplate" in rendered
