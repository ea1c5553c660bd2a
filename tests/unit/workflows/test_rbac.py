"""RBAC: exactly the permissions the executor and the readiness zone check need."""

from __future__ import annotations

from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.rbac import build_rbac


def test_build_rbac_least_privilege() -> None:
    objects = build_rbac(BaselineParams(target_namespace="models"), TemplateOptions())
    by_kind = {(o["kind"], o["metadata"].get("namespace")): o for o in objects}
    assert by_kind[("ServiceAccount", "benchmarking")]["metadata"]["name"] == "inference-perf-sa"
    rules = {
        (o["kind"], o["metadata"].get("namespace")): o["rules"]
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    assert rules == {
        ("Role", "benchmarking"): [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtaskresults"],
                "verbs": ["create", "patch"],
            }
        ],
        ("Role", "models"): [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        ("ClusterRole", None): [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
    }
    bindings = [o for o in objects if o["kind"].endswith("Binding")]
    assert len(bindings) == 3
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "inference-perf-sa", "namespace": "benchmarking"}
        ]
        role = next(
            o
            for o in objects
            if o["kind"] == binding["roleRef"]["kind"]
            and o["metadata"]["name"] == binding["roleRef"]["name"]
        )
        assert role["metadata"].get("namespace") == binding["metadata"].get("namespace")
