"""install/submit through Hera's WorkflowsService against a recording fake Argo Server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fakes.argo import FakeArgoServer, FakeArgoSession, Recorded
from tests.fakes.hostile import Behaviour, HostileServer, endless_body
from tests.helpers.argo.golden import check_golden_json
from tests.helpers.dockerfile_targets import REPO
from tests.helpers.never_answering import NEVER_ANSWERING
from workflows.baseline import main
from workflows.params import BaselineParams
from workflows.submit import (
    ARGO_CALL_DEADLINE_S,
    ARGO_MAX_BODY_BYTES,
    BoundedSession,
    connection_from,
    make_service,
)

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


REGISTRY = ["--image-registry", "reg.example/bench"]


def _installed(**install_flags: str) -> tuple[FakeArgoServer, FakeArgoSession]:
    """A fake server on which `install` (with these flags) has run; its requests cleared."""
    server = FakeArgoServer()
    session = FakeArgoSession(server)
    flags = [x for k, v in install_flags.items() for x in ("--" + k.replace("_", "-"), v)]
    assert main(["install", *REGISTRY, *flags], ENV, session) == 0
    session.requests.clear()
    return server, session


def _writes(session: FakeArgoSession) -> list[str]:
    return [f"{r.method} {r.url.removeprefix(BASE)}" for r in session.requests if r.method != "GET"]


def test_submit_runs_installed_template_with_all_parameters_and_leaves_it_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, session = _installed()
    capsys.readouterr()
    before = json.dumps(list(server.stored.values()), sort_keys=True)
    code = main(["submit", "--rate", "2", "--duration", "60"], ENV, session)
    assert code == 0, capsys.readouterr().err
    version, get, submit = session.requests
    assert (version.method, version.url) == ("GET", f"{BASE}/version")
    assert (get.method, get.url) == ("GET", f"{BASE}/workflow-templates/benchmarking/llm-baseline")
    assert (submit.method, submit.url) == ("POST", f"{BASE}/workflows/benchmarking/submit")
    assert json.dumps(list(server.stored.values()), sort_keys=True) == before
    assert all(r.headers["Authorization"] == "Bearer s3cr3t-token" for r in session.requests)
    body = submit.body
    assert body["resourceKind"] == "WorkflowTemplate"
    assert body["resourceName"] == "llm-baseline"
    sent = dict(p.split("=", 1) for p in body["submitOptions"]["parameters"])
    assert set(sent) == set(BaselineParams().knobs)
    assert (sent["rate"], sent["duration"], sent["sla_ttft_p99_ms"]) == ("2", "60", "")
    check_golden_json("submit_request", body)
    out = capsys.readouterr().out
    assert "installed" not in out
    assert "submitted benchmarking/llm-baseline-x7k2p" in out
    assert "https://argo.example.com/argo/workflows/benchmarking/llm-baseline-x7k2p" in out
    assert "s3cr3t" not in out


def test_submit_unset_knobs_take_the_installed_values() -> None:
    server, session = _installed(
        base_url="http://mine.models:8000", target_labels="app=mine", target_namespace="models"
    )
    assert main(["submit", "--duration", "60"], ENV, session) == 0
    (body,) = server.submitted
    sent = dict(p.split("=", 1) for p in body["submitOptions"]["parameters"])
    assert (sent["base_url"], sent["target_labels"], sent["target_namespace"]) == (
        "http://mine.models:8000",
        "app=mine",
        "models",
    )
    assert sent["duration"] == "60"


def test_submit_without_installed_template_says_install(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = FakeArgoSession(FakeArgoServer())
    assert main(["submit"], ENV, session) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "workflows.baseline: submit: WorkflowTemplate benchmarking/llm-baseline is not installed: "
        "run `python -m workflows.baseline install` first (or submit --update-template)"
    )
    assert _writes(session) == []


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--target-labels", "app=other"], "templates[load].affinity"),
        (["--target-labels", "app=other"], "parameters[target_labels].enum"),
        (["--image-tag", "9.9.9", *REGISTRY], "templates[load].container"),
        (["--zone-affinity", "preferred", *REGISTRY], "templates[readiness].container"),
        (["--service-account", "other-sa", *REGISTRY], "serviceAccountName"),
    ],
)
def test_submit_refuses_when_it_would_change_the_installed_template(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server, session = _installed()
    before = json.dumps(list(server.stored.values()), sort_keys=True)
    assert main(["submit", *flags], ENV, session) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "workflows.baseline: submit: the installed WorkflowTemplate benchmarking/llm-baseline "
        "differs from what this submit would install ("
    )
    assert named in err
    assert "pass --update-template to replace it" in err
    assert _writes(session) == [] and server.submitted == []
    assert json.dumps(list(server.stored.values()), sort_keys=True) == before


def test_submit_with_the_install_options_it_was_installed_with_runs() -> None:
    server, session = _installed(api_key_secret="vllm-key", zone_affinity="preferred")
    flags = [*REGISTRY, "--api-key-secret", "vllm-key", "--zone-affinity", "preferred"]
    # Knob values are the run's own (every one is submitted), not a template difference.
    assert main(["submit", *flags, "--duration", "60", "--rate", "2"], ENV, session) == 0
    assert len(server.submitted) == 1
    assert _writes(session) == ["POST /workflows/benchmarking/submit"]


def test_submit_refuses_a_template_of_another_version(capsys: pytest.CaptureFixture[str]) -> None:
    server, session = _installed()
    stored = server.stored[("workflow-templates", "llm-baseline")]
    parameters = stored["spec"]["arguments"]["parameters"]
    parameters[:] = [p for p in parameters if p["name"] != "seed"]
    parameters.append({"name": "retired_knob", "value": "1"})
    assert main(["submit"], ENV, session) == 1
    err = capsys.readouterr().err
    assert "(parameters[+seed], parameters[-retired_knob])" in err
    assert server.submitted == []


def test_submit_update_template_replaces_it_then_submits() -> None:
    server, session = _installed()
    flags = ["--update-template", "--target-labels", "app=other", *REGISTRY]
    assert main(["submit", *flags], ENV, session) == 0
    assert _writes(session) == [
        "PUT /workflow-templates/benchmarking/llm-baseline",
        "POST /workflows/benchmarking/submit",
    ]
    stored = server.stored[("workflow-templates", "llm-baseline")]
    load = next(t for t in stored["spec"]["templates"] if t["name"] == "load")
    term = load["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"]["matchLabels"] == {"app": "other"}


@pytest.mark.parametrize(
    "argv",
    [
        ["install"],
        ["submit", "--update-template"],
        ["install", "--image-registry", "llm-baseline-bench"],
    ],
)
def test_install_refuses_placeholder_images_before_any_request(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    session = FakeArgoSession(FakeArgoServer())
    assert main(argv, ENV, session) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "image_registry (--image-registry) is the placeholder 'llm-baseline-bench'" in err
    assert "make images REGISTRY=<registry> TAG=<tag>" in err
    assert session.requests == []


def test_render_keeps_the_placeholder_images(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render"], {}) == 0
    assert "image: llm-baseline-bench/load:" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["install", *REGISTRY], ["submit"]])
@pytest.mark.parametrize("version", ["v4.0.5", "v3.6.19", "v3.7.15", "v4.0.0-rc4"])
def test_old_argo_server_is_refused_before_anything_is_written(
    command: list[str], version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeArgoServer(version=version)
    session = FakeArgoSession(server)
    assert main(command, ENV, session) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"workflows.baseline: argo: Argo Server https://argo.example.com/argo/ runs Argo "
        f"Workflows {version}, these manifests need >= v4.0.6 (mutexes held by template runs "
        "survive a controller restart only from there, argo PR #16160): upgrade Argo Workflows"
    )
    assert [r.url for r in session.requests] == [f"{BASE}/version"]


@pytest.mark.parametrize("version", ["v4.0.6", "v4.1.0-rc1", "v4.1.2", "v5.0.0"])
def test_supported_argo_server_installs(version: str) -> None:
    server = FakeArgoServer(version=version)
    assert main(["install", *REGISTRY], ENV, FakeArgoSession(server)) == 0
    assert ("workflow-templates", "llm-baseline") in server.stored


@pytest.mark.parametrize("version", ["v0.0.0+abc1234", "untagged+unknown", "latest", ""])
def test_dev_argo_server_warns_and_continues(
    version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeArgoServer(version=version)
    assert main(["install", *REGISTRY], ENV, FakeArgoSession(server)) == 0
    err = capsys.readouterr().err
    assert (
        f"argo: cannot tell the version of Argo Server https://argo.example.com/argo/ ({version!r}"
        in err
    )
    assert "these manifests need Argo Workflows >= v4.0.6" in err
    assert ("workflow-templates", "llm-baseline") in server.stored


def test_install_existing_template_is_updated_and_cron_installed() -> None:
    server, session = _installed()
    assert main(["install", *REGISTRY, "--cron", "0 3 * * *"], ENV, session) == 0
    methods = [(r.method, r.url.removeprefix(BASE)) for r in session.requests]
    assert methods == [
        ("GET", "/version"),
        ("GET", "/workflow-templates/benchmarking/llm-baseline"),
        ("PUT", "/workflow-templates/benchmarking/llm-baseline"),
        ("GET", "/cron-workflows/benchmarking/llm-baseline-nightly"),
        ("POST", "/cron-workflows/benchmarking"),
    ]
    assert session.requests[2].body["template"]["metadata"]["resourceVersion"] == "1001"
    assert ("cron-workflows", "llm-baseline-nightly") in server.stored


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "argo: read the server version failed (401): the token is missing"),
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


@pytest.mark.parametrize("token", ["s3cr3t-token", "Bearer s3cr3t-token"])
def test_server_error_echoing_the_token_is_scrubbed(
    token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeArgoServer()

    def handler(request: Recorded) -> tuple[int, Any]:
        if request.url.endswith("/version"):
            return server(request)
        echoed = f"rejected request with headers\nAuthorization: {request.headers['Authorization']}"
        return 500, {"code": 13, "message": echoed}

    env = {**ENV, "ARGO_TOKEN": token}
    assert main(["submit"], env, FakeArgoSession(handler)) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "workflows.baseline: argo: get WorkflowTemplate 'llm-baseline' failed (500): see the "
        "server message; server said: 500 with message: `rejected request with headers "
        "Authorization: ***REDACTED***`"
    )


def test_submit_conflict_on_submit_names_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = _installed()

    def handler(request: Recorded) -> tuple[int, Any]:
        if request.url.endswith("/submit"):
            return 409, {"code": 6, "message": "already exists"}
        return server(request)

    assert main(["submit"], ENV, FakeArgoSession(handler)) == 1
    assert "submit from WorkflowTemplate 'llm-baseline' failed (409)" in capsys.readouterr().err


def test_submit_without_server_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit"], {}, FakeArgoSession(FakeArgoServer())) == 2
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
    server, session = _installed()
    server.workflow_polls = [_workflow("w1", "Running"), _workflow("w1", "Failed", report)]
    code = main(["submit", "--wait", "--poll-interval", "0"], ENV, session)
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


def test_version_answer_missing_fields_warns_and_continues(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = FakeArgoServer()

    def handler(request: Recorded) -> tuple[int, Any]:
        if request.url.endswith("/version"):
            return 200, {"version": "v4.0.6"}  # a proxy or build that drops the other fields
        return server(request)

    assert main(["install", *REGISTRY], ENV, FakeArgoSession(handler)) == 0
    assert "cannot tell the version of Argo Server" in capsys.readouterr().err
    assert ("workflow-templates", "llm-baseline") in server.stored


def test_every_argo_call_is_bounded_by_default() -> None:
    """Hera calls `session.request` without a timeout: the default session bounds each call."""
    service = make_service(connection_from(ENV, default_namespace="benchmarking"))
    assert isinstance(service.session, BoundedSession)
    assert service.session.deadline_s == ARGO_CALL_DEADLINE_S


@pytest.mark.timeout(20)
@pytest.mark.parametrize("behaviour", NEVER_ANSWERING)
def test_argo_server_that_accepts_and_never_answers_fails_in_one_line_at_the_deadline(
    behaviour: Behaviour, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wall clock, not per socket read: a head dripped a byte at a time never ends either."""
    with HostileServer([behaviour]) as server:
        env = {"ARGO_SERVER": server.url.removeprefix("http://"), "ARGO_SECURE": "false"}
        started = time.monotonic()
        assert main(["submit"], env, BoundedSession(deadline_s=0.5)) == 1
        took = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert err == (
        "workflows.baseline: argo: read the server version failed: no complete answer within "
        f"0.5 s from {server.url}/ (a server or proxy that accepts and does not "
        "answer?); check ARGO_SERVER"
    )
    assert took < 15  # bounded: the per-read timeout alone would wait forever on `drip`


@pytest.mark.timeout(20)
def test_argo_answer_past_the_body_cap_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with HostileServer([endless_body(b"[" * 65536)]) as server:
        env = {"ARGO_SERVER": server.url.removeprefix("http://"), "ARGO_SECURE": "false"}
        session = BoundedSession(deadline_s=30, max_body_bytes=1 << 20)
        assert main(["submit"], env, session) == 1
    err = capsys.readouterr().err.strip()
    assert "argo: read the server version failed: HTTP 200: body larger than 1,048,576" in err
    assert len(err.splitlines()) == 1


def test_readme_states_the_argo_call_limits() -> None:
    readme = (REPO / "README.md").read_text()
    assert (
        f"ends within {ARGO_CALL_DEADLINE_S:g} s of wall\n  clock and reads at most "
        f"{ARGO_MAX_BODY_BYTES >> 20} MiB"
    ) in readme


def test_install_bad_cron_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeArgoSession(lambda request: (500, {}))
    argv = ["install", "--image-registry", "r.example/x", "--cron", "0 3 * * MON-FRI"]
    assert main(argv, {"ARGO_SERVER": "127.0.0.1:2746"}, session) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'0 3 * * MON-FRI'" in err and "1-5" in err
    assert session.requests == []


def test_submit_scenario_runs_its_own_template_with_its_knobs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One template per scenario: `submit --scenario saturation` runs llm-baseline-saturation
    with its knobs (the stages), never the baseline's."""
    server, session = _installed(scenario="saturation")
    assert "llm-baseline-saturation" in {name for _, name in server.stored}
    code = main(["submit", "--scenario", "saturation", "--stages", "1x60,2x60"], ENV, session)
    assert code == 0, capsys.readouterr().err
    (body,) = server.submitted
    assert body["resourceName"] == "llm-baseline-saturation"
    sent = dict(p.split("=", 1) for p in body["submitOptions"]["parameters"])
    assert sent["stages"] == "1x60,2x60" and "rate" not in sent
    assert main(["submit", "--stages", "1x60"], ENV, session) == 2  # the baseline has none


def test_submit_config_scenario_with_a_new_config_takes_its_stages(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The installed template's stages came from the old config: a submit with a new config
    takes the new one's, not the installed value."""
    old, new = tmp_path / "old.yml", tmp_path / "new.yml"
    old.write_text("load: {stages: [{rate: 1, duration: 60}]}\nserver: {base_url: 'http://m:1'}\n")
    new.write_text("load: {stages: [{rate: 3, duration: 30}]}\nserver: {base_url: 'http://m:1'}\n")
    server, session = _installed(scenario="config", config=str(old))
    code = main(["submit", "--scenario", "config", "--config", str(new)], ENV, session)
    assert code == 0, capsys.readouterr().err
    (body,) = server.submitted
    sent = dict(p.split("=", 1) for p in body["submitOptions"]["parameters"])
    assert (sent["stages"], sent["config_name"]) == ("3x30", "new")
