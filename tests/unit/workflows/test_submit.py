"""install/submit through Hera's WorkflowsService against a recording fake Argo Server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.workflows.fake_argo import FakeArgoSession, Recorded
from workflows.baseline import main
from workflows.params import BaselineParams
from workflows.submit import connection_from

from .test_template import GOLDEN_DIR, REGENERATE

ENV = {"ARGO_SERVER": "argo.example.com", "ARGO_TOKEN": "s3cr3t-token", "ARGO_BASE_HREF": "/argo"}
BASE = "https://argo.example.com/argo/api/v1"


def _workflow(name: str, phase: str | None = None, report: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "benchmarking"},
        "spec": {"workflowTemplateRef": {"name": "llm-baseline"}},
    }
    if phase:
        nodes: dict[str, Any] = {
            "n1": {
                "id": "n1",
                "name": f"{name}.load",
                "displayName": "load",
                "type": "Pod",
                "phase": "Succeeded",
                "templateName": "load",
            },
        }
        if report is not None:
            nodes["n2"] = {
                "id": "n2",
                "name": f"{name}.report",
                "displayName": "report",
                "type": "Retry",
                "phase": phase,
                "templateName": "report",
                "outputs": {"parameters": [{"name": k, "value": v} for k, v in report.items()]},
            }
        body["status"] = {"phase": phase, "nodes": nodes}
    return body


def _happy(request: Recorded) -> tuple[int, Any]:
    if request.method == "GET" and "/workflow-templates/" in request.url:
        return 404, {"code": 5, "message": "workflowtemplates.argoproj.io not found"}
    if request.method == "POST" and request.url.endswith("/workflow-templates/benchmarking"):
        return 200, request.body["template"]
    if request.url.endswith("/submit"):
        return 200, _workflow("llm-baseline-x7k2p")
    raise AssertionError(f"unexpected {request.method} {request.url}")


def test_submit_upserts_template_then_submits_all_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = FakeArgoSession(_happy)
    code = main(["submit", "--rate", "2", "--duration", "60"], ENV, session)
    assert code == 0, capsys.readouterr().err
    get, create, submit = session.requests
    assert (get.method, get.url) == ("GET", f"{BASE}/workflow-templates/benchmarking/llm-baseline")
    assert (create.method, create.url) == ("POST", f"{BASE}/workflow-templates/benchmarking")
    assert (submit.method, submit.url) == ("POST", f"{BASE}/workflows/benchmarking/submit")
    assert all(r.headers["Authorization"] == "Bearer s3cr3t-token" for r in session.requests)
    body = submit.body
    assert body["resourceKind"] == "WorkflowTemplate"
    assert body["resourceName"] == "llm-baseline"
    sent = dict(p.split("=", 1) for p in body["submitOptions"]["parameters"])
    assert set(sent) == set(BaselineParams.model_fields)
    assert (sent["rate"], sent["duration"], sent["sla_ttft_p99_ms"]) == ("2", "60", "")
    golden = GOLDEN_DIR / "submit_request.json"
    if REGENERATE:
        golden.write_text(json.dumps(body, indent=2) + "\n")
    assert json.loads(golden.read_text()) == body
    out = capsys.readouterr().out
    assert "submitted benchmarking/llm-baseline-x7k2p" in out
    assert "https://argo.example.com/argo/workflows/benchmarking/llm-baseline-x7k2p" in out
    assert "s3cr3t" not in out


def test_install_existing_template_is_updated_and_cron_installed() -> None:
    def handler(request: Recorded) -> tuple[int, Any]:
        if request.method == "GET":
            spec: dict[str, Any] = {}
            if "cron-workflows" in request.url:
                spec = {"schedules": ["0 1 * * *"], "workflowSpec": {}}
            return 200, {"metadata": {"name": "x", "resourceVersion": "42"}, "spec": spec}
        if request.method == "PUT":
            key = "template" if "workflow-templates" in request.url else "cronWorkflow"
            return 200, request.body[key]
        raise AssertionError(f"unexpected {request.method} {request.url}")

    session = FakeArgoSession(handler)
    assert main(["install", "--cron", "0 3 * * *"], ENV, session) == 0
    methods = [(r.method, r.url.removeprefix(BASE)) for r in session.requests]
    assert methods == [
        ("GET", "/workflow-templates/benchmarking/llm-baseline"),
        ("PUT", "/workflow-templates/benchmarking/llm-baseline"),
        ("GET", "/cron-workflows/benchmarking/llm-baseline-nightly"),
        ("PUT", "/cron-workflows/benchmarking/llm-baseline-nightly"),
    ]
    assert session.requests[1].body["template"]["metadata"]["resourceVersion"] == "42"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "argo: install WorkflowTemplate 'llm-baseline' failed (401): the token is missing"),
        (403, "failed (403): the token's account may not do this in namespace 'benchmarking'"),
        (404, "failed (404): not found at https://argo.example.com/argo/: check ARGO_SERVER"),
        (409, "failed (409): the object was changed or created concurrently"),
    ],
)
def test_submit_server_error_one_clear_line(
    status: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session = FakeArgoSession(lambda r: (status, {"code": 1, "message": "boom"}))
    assert main(["submit"], ENV, session) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "s3cr3t" not in err


def test_submit_conflict_on_submit_names_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(request: Recorded) -> tuple[int, Any]:
        if request.url.endswith("/submit"):
            return 409, {"code": 6, "message": "already exists"}
        return _happy(request)

    assert main(["submit"], ENV, FakeArgoSession(handler)) == 1
    assert "submit from WorkflowTemplate 'llm-baseline' failed (409)" in capsys.readouterr().err


def test_submit_without_server_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit"], {}, FakeArgoSession(_happy)) == 2
    assert "set ARGO_SERVER" in capsys.readouterr().err


def test_submit_wait_prints_verdict_and_breach_exit(capsys: pytest.CaptureFixture[str]) -> None:
    report = {
        "verdict": "fail",
        "ttft_p50_ms": "41.2",
        "ttft_p99_ms": "80.5",
        "itl_p50_ms": "7.1",
        "itl_p99_ms": "9.9",
        "error_rate": "0",
        "report_uri": "s3://b/p/report.html",
    }
    polls = iter([_workflow("w1", "Running"), _workflow("w1", "Failed", report)])

    def handler(request: Recorded) -> tuple[int, Any]:
        if request.method == "GET" and "/workflows/benchmarking/llm-baseline-x7k2p" in request.url:
            return 200, next(polls)
        return _happy(request)

    code = main(["submit", "--wait", "--poll-interval", "0"], ENV, FakeArgoSession(handler))
    out = capsys.readouterr().out
    assert code == 3
    assert "verdict: fail" in out
    assert "ttft_p99_ms: 80.5" in out


def test_connection_host_plain_http_no_base_href() -> None:
    connection = connection_from(
        {"ARGO_SERVER": "localhost:2746", "ARGO_SECURE": "false"}, default_namespace="argo"
    )
    assert connection.host == "http://localhost:2746/"
    assert connection.namespace == "argo"
    assert connection.token is None
