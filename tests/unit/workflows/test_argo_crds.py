"""Every rendered object against what the API server enforces: Argo's JSON Schema and the full
CRDs of every vendored Argo release for Argo kinds, the `kubernetes` models for the rest. And the
CRD check itself: it must refuse what the API server would."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.argo.k8s_models import MODELS, round_trip
from tests.helpers.argo.rendered import rendered_objects
from tests.helpers.argo.schema import SCHEMA_PATH, crd_errors, schema_errors
from workflows.argo_crd import CRD_KINDS, CRD_VERSIONS, crd_schema, cron_schedule_pattern
from workflows.cron import build_cron
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template

REPO = Path(__file__).resolve().parents[3]

#: Install options that each add pieces to the manifests (volumes, env, refs, affinity modes).
VARIANTS = [
    (),
    ("--api-key-secret", "vllm-key", "--ca-bundle-configmap", "corp-ca"),
    ("--artifact-repository-configmap", "repos", "--artifact-repository-key", "s3"),
    ("--zone-affinity", "preferred", "--cron", "@daily"),
    ("--zone-affinity", "off", "--timezone", "Europe/Paris"),
    ("--load-pods", "3"),  # the coordinator daemon, the fanned-out load, key-only artifacts
]


@pytest.mark.parametrize("extra", VARIANTS, ids=lambda v: " ".join(v) or "defaults")
def test_every_rendered_object_validates(extra: tuple[str, ...], tmp_path: Path) -> None:
    objects = rendered_objects(tmp_path, *extra)
    kinds = {o["kind"] for o in objects}
    assert kinds == {*CRD_KINDS, *MODELS}
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata'].get('name') or obj['metadata']}"
        if obj["kind"] in CRD_KINDS:
            assert schema_errors(obj, obj["kind"]) == [], where
        else:
            assert round_trip(obj) == obj, where


def test_vendored_data_is_inside_the_repository() -> None:
    """A clone without ../shared must run these tests: nothing reads it, all data is here."""
    assert SCHEMA_PATH.is_relative_to(REPO) and SCHEMA_PATH.is_file()
    for version in CRD_VERSIONS:
        for kind in CRD_KINDS:
            assert crd_schema(version, kind)["properties"]["kind"]["type"] == "string"
    sources = [*(REPO / "tests").rglob("*.py"), *(REPO / "workflows").rglob("*.py")]
    sources.remove(Path(__file__).resolve())
    assert not [p for p in sources if '"shared"' in p.read_text() or "../shared" in p.read_text()]


def _template() -> dict[str, Any]:
    return build_template(BaselineParams(), TemplateOptions()).to_dict()


def test_crds_refuse_a_misspelt_field() -> None:
    manifest = _template()
    manifest["spec"]["templates"][1]["container"]["imagePullPolcy"] = "Always"
    for version in CRD_VERSIONS:
        errors = crd_errors(manifest, "WorkflowTemplate", version)
        assert any("imagePullPolcy" in e for e in errors), (version, errors)


def test_crds_refuse_a_wrong_type_and_accept_int_or_string() -> None:
    manifest = _template()
    retry = manifest["spec"]["templates"][1]["retryStrategy"]
    retry["backoff"]["factor"] = 2  # int-or-string: both forms are valid
    retry["limit"] = 2
    assert all(crd_errors(manifest, "WorkflowTemplate", v) == [] for v in CRD_VERSIONS)
    retry["limit"] = True
    assert all(crd_errors(manifest, "WorkflowTemplate", v) for v in CRD_VERSIONS)


def test_crd_v4_0_5_refuses_named_cron_fields_and_v4_1_2_accepts_them() -> None:
    cron = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * 1-5").to_dict()
    assert all(crd_errors(cron, "CronWorkflow", v) == [] for v in CRD_VERSIONS)
    named = copy.deepcopy(cron)
    named["spec"]["schedules"] = ["0 3 * * MON-FRI"]
    assert any("MON-FRI" in e for e in crd_errors(named, "CronWorkflow", "v4.0.5"))
    assert crd_errors(named, "CronWorkflow", "v4.1.2") == []


@pytest.mark.parametrize(
    ("schedule", "accepted"),
    [
        ("0 3 * * *", True),
        ("*/15 2-4 1,15 * 0", True),
        ("@daily", True),
        ("@every 1h30m", True),
        ("0 3 * * MON-FRI", False),
        ("0 3 * *", False),
        ("0 3 * * * *", False),
        ("@fortnightly", False),
    ],
)
def test_schedule_pattern_comes_from_the_oldest_crd(schedule: str, accepted: bool) -> None:
    cron = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * *").to_dict()
    cron["spec"]["schedules"] = [schedule]
    assert (crd_errors(cron, "CronWorkflow", "v4.0.5") == []) is accepted
    assert "0-9" in cron_schedule_pattern()
