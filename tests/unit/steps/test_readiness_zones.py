"""The Kubernetes pod/zone check against a real HTTP fake of the API, through the real client."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from steps.errors import BenchError, UsageError
from steps.kube_pods import MAX_BODY_BYTES, KubeCredentials, find_credentials
from steps.readiness.zones import check_zones
from steps.shared import ZoneAffinity, format_label_selector, parse_label_selector
from tests.fakes.hostile import Behaviour, HostileServer, endless_body
from tests.fakes.kube_api import FakeKubeAPI, FakePod, fake_kube_api, write_kubeconfig
from tests.helpers.never_answering import NEVER_ANSWERING

LABELS = {"app.kubernetes.io/component": "qwen3-vllm", "tier": "model"}


def _creds(tmp_path: Path, api: FakeKubeAPI) -> KubeCredentials:
    return KubeCredentials(
        in_cluster=False, kubeconfig=str(write_kubeconfig(tmp_path / "kc", api.url))
    )


def test_check_zones_ready_pods_reports_sorted_zones_and_queries_selector(tmp_path: Path) -> None:
    state = FakeKubeAPI(
        pods=[
            FakePod("vllm-0", "models", LABELS, node="node-b"),
            FakePod("vllm-1", "models", LABELS, node="node-a"),
            FakePod("other", "models", {"app.kubernetes.io/component": "other"}, node="node-c"),
            FakePod("vllm-elsewhere", "default", LABELS, node="node-c"),
        ],
        node_zones={"node-a": "us-west-2a", "node-b": "us-west-2b", "node-c": "us-west-2c"},
    )
    with fake_kube_api(state) as api:
        report = check_zones(_creds(tmp_path, api), "models", LABELS)
    assert report.zones == ("us-west-2a", "us-west-2b")
    assert sorted(p.name for p in report.pods) == ["vllm-0", "vllm-1"]
    pod_requests = [r for r in state.requests if "/pods" in r.path]
    assert len(pod_requests) == 1
    assert pod_requests[0].path == "/api/v1/namespaces/models/pods"
    assert pod_requests[0].query["labelSelector"] == [
        "app.kubernetes.io/component=qwen3-vllm,tier=model"
    ]
    assert sorted(r.path for r in state.requests if "/nodes/" in r.path) == [
        "/api/v1/nodes/node-a",
        "/api/v1/nodes/node-b",
    ]
    assert {r.authorization for r in state.requests} == {"Bearer fake-sa-token"}


def test_check_zones_no_matching_pods_fails_explaining_affinity(tmp_path: Path) -> None:
    state = FakeKubeAPI(pods=[FakePod("vllm-0", "default", LABELS)], node_zones={"node-a": "z"})
    with fake_kube_api(state) as api, pytest.raises(BenchError) as info:
        check_zones(_creds(tmp_path, api), "models", LABELS)
    message = str(info.value)
    assert message.startswith(
        "no pods match labels 'app.kubernetes.io/component=qwen3-vllm,tier=model' "
        "in namespace 'models'"
    )
    assert "required zone affinity (topology.kubernetes.io/zone)" in message
    assert "could never be scheduled" in message
    assert "--target-namespace" in message


def test_check_zones_no_ready_pod_fails_listing_pods(tmp_path: Path) -> None:
    state = FakeKubeAPI(
        pods=[
            FakePod("vllm-0", "models", LABELS, ready=False, node=None, phase="Pending"),
            FakePod("vllm-1", "models", LABELS, ready=False, node="node-a"),
        ],
        node_zones={"node-a": "us-west-2a"},
    )
    with fake_kube_api(state) as api, pytest.raises(BenchError) as info:
        check_zones(_creds(tmp_path, api), "models", LABELS)
    message = str(info.value)
    assert "2 pod(s) match" in message
    assert "none is Ready: vllm-0 (Pending, not Ready), vllm-1 (Running, not Ready)" in message
    assert not [r for r in state.requests if "/nodes/" in r.path]


def test_check_zones_some_not_ready_reports_ready_zones_only(tmp_path: Path) -> None:
    state = FakeKubeAPI(
        pods=[
            FakePod("vllm-0", "models", LABELS, node="node-a"),
            FakePod("vllm-1", "models", LABELS, ready=False, node="node-b"),
        ],
        node_zones={"node-a": "us-west-2a", "node-b": "us-west-2b"},
    )
    with fake_kube_api(state) as api:
        report = check_zones(_creds(tmp_path, api), "models", LABELS)
    assert report.zones == ("us-west-2a",)


ZONELESS = FakeKubeAPI(
    pods=[FakePod("vllm-0", "models", LABELS, node="kind-worker"),
          FakePod("vllm-1", "models", LABELS, node="kind-worker2")],
    node_zones={"kind-worker": None, "kind-worker2": None},
)  # fmt: skip


def test_check_zones_zoneless_nodes_with_required_affinity_fail_naming_the_fix(
    tmp_path: Path,
) -> None:
    state = copy.deepcopy(ZONELESS)
    with fake_kube_api(state) as api, pytest.raises(BenchError) as info:
        check_zones(_creds(tmp_path, api), "models", LABELS, ZoneAffinity.required)
    assert str(info.value) == (
        "the nodes of the Ready pods matching labels "
        "'app.kubernetes.io/component=qwen3-vllm,tier=model' in namespace 'models' "
        "(kind-worker, kind-worker2) carry no topology.kubernetes.io/zone label (kind, minikube "
        "and k3d set none), so the load pod's required zone affinity could never be scheduled: "
        "install the template with --zone-affinity preferred (or off), or label the nodes with "
        "topology.kubernetes.io/zone"
    )


def test_check_zones_default_affinity_is_required(tmp_path: Path) -> None:
    with fake_kube_api(copy.deepcopy(ZONELESS)) as api, pytest.raises(BenchError):
        check_zones(_creds(tmp_path, api), "models", LABELS)


@pytest.mark.parametrize("affinity", [ZoneAffinity.preferred, ZoneAffinity.off])
def test_check_zones_zoneless_nodes_pass_without_required_affinity(
    affinity: ZoneAffinity, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_kube_api(copy.deepcopy(ZONELESS)) as api:
        report = check_zones(_creds(tmp_path, api), "models", LABELS, affinity)
    assert report.zones == ()
    assert [p.name for p in report.pods] == ["vllm-0", "vllm-1"]
    assert f"with zone affinity {affinity.value} the load pod may run on any node" in caplog.text


def test_check_zones_one_zoned_node_is_enough_for_required_affinity(tmp_path: Path) -> None:
    state = copy.deepcopy(ZONELESS)
    state.node_zones["kind-worker2"] = "us-west-2a"
    with fake_kube_api(state) as api:
        report = check_zones(_creds(tmp_path, api), "models", LABELS, ZoneAffinity.required)
    assert report.zones == ("us-west-2a",)


def test_check_zones_unreadable_node_is_not_taken_for_zoneless(tmp_path: Path) -> None:
    # The fake answers 404 for a node it does not know (as for a node deleted meanwhile).
    state = FakeKubeAPI(pods=[FakePod("vllm-0", "models", LABELS, node="gone")])
    with fake_kube_api(state) as api:
        report = check_zones(_creds(tmp_path, api), "models", LABELS, ZoneAffinity.required)
    assert report.zones == ()
    assert [r.path for r in state.requests][-1] == "/api/v1/nodes/gone"


def test_check_zones_no_pods_without_required_affinity_still_fails(tmp_path: Path) -> None:
    with fake_kube_api(FakeKubeAPI()) as api, pytest.raises(BenchError) as info:
        check_zones(_creds(tmp_path, api), "models", LABELS, ZoneAffinity.off)
    assert str(info.value) == (
        "no pods match labels 'app.kubernetes.io/component=qwen3-vllm,tier=model' in namespace "
        "'models': there is no model pod to benchmark; check --target-labels and "
        "--target-namespace"
    )


def test_check_zones_rejected_token_fails_naming_rbac(tmp_path: Path) -> None:
    state = FakeKubeAPI(pods=[FakePod("vllm-0", "models", LABELS)])
    with fake_kube_api(state) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", api.url)
        kubeconfig.write_text(kubeconfig.read_text().replace("fake-sa-token", "wrong"))
        with pytest.raises(BenchError) as info:
            check_zones(KubeCredentials(False, str(kubeconfig)), "models", LABELS)
    assert "refused to list pods in namespace 'models' (HTTP 401" in str(info.value)


def test_check_zones_unreachable_api_fails_one_line(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    with pytest.raises(BenchError) as info:
        check_zones(KubeCredentials(False, str(kubeconfig)), "models", LABELS)
    assert str(info.value).startswith("Kubernetes API unreachable to list pods")


def test_check_zones_broken_kubeconfig_fails_naming_file(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(BenchError) as info:
        check_zones(KubeCredentials(False, str(kubeconfig)), "models", LABELS)
    assert f"Kubernetes credentials from {kubeconfig} unusable" in str(info.value)


def test_parse_label_selector_pairs_round_trip() -> None:
    labels = parse_label_selector(" app.kubernetes.io/component=qwen3-vllm , tier=model,")
    assert labels == LABELS
    assert format_label_selector(labels) == "app.kubernetes.io/component=qwen3-vllm,tier=model"
    assert parse_label_selector("") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app", "'app' is not key=value"),
        ("app==x", "'app==x' is not key=value"),
        ("-bad=x", "'-bad' is not a valid Kubernetes label key"),
        ("Bad.Prefix/app=x", "'Bad.Prefix/app' is not a valid Kubernetes label key"),
        ("app=has space", "value 'has space' of 'app' is not a valid Kubernetes label value"),
        ("app=a,app=b", "'app' given twice"),
    ],
)
def test_parse_label_selector_bad_input_names_the_item(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_label_selector(text)
    assert str(info.value).startswith("--target-labels: ")
    assert expected in str(info.value)


def test_find_credentials_kubeconfig_env_wins_over_home(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text("{}")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    assert find_credentials({"KUBECONFIG": f"/nope:{kc}"}, home) == KubeCredentials(
        False, f"/nope:{kc}"
    )
    assert find_credentials({}, home) == KubeCredentials(False, str(home / ".kube" / "config"))


def test_find_credentials_nothing_configured_returns_none(tmp_path: Path) -> None:
    assert find_credentials({}, tmp_path) is None
    assert find_credentials({"KUBECONFIG": str(tmp_path / "missing")}, tmp_path) is None
    # The service-account token file does not exist here, so the env var alone is not enough.
    assert find_credentials({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path) is None


@pytest.mark.timeout(20)
@pytest.mark.parametrize("behaviour", NEVER_ANSWERING)
def test_check_zones_api_that_never_answers_fails_at_the_deadline(
    behaviour: Behaviour, tmp_path: Path
) -> None:
    """Wall clock, not per socket read: a head dripped a byte at a time never ends either."""
    with HostileServer([behaviour]) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kc", server.url)
        creds = KubeCredentials(in_cluster=False, kubeconfig=str(kubeconfig))
        started = time.monotonic()
        with pytest.raises(BenchError) as caught:
            check_zones(creds, "models", LABELS, deadline_s=0.5)
        took = time.monotonic() - started
    assert str(caught.value) == (
        "Kubernetes API: no complete answer to list pods in namespace 'models' within 0.5 s "
        "(an API server or proxy that accepts and does not answer?)"
    )
    assert took < 15  # bounded: the client's per-read timeout alone would wait forever on drip


@pytest.mark.timeout(20)
def test_check_zones_api_answer_past_the_body_cap_is_refused(tmp_path: Path) -> None:
    with HostileServer([endless_body(b"[" * 65536)]) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kc", server.url)
        creds = KubeCredentials(in_cluster=False, kubeconfig=str(kubeconfig))
        with pytest.raises(BenchError) as caught:
            check_zones(creds, "models", LABELS)
    assert str(caught.value) == (
        "Kubernetes API failed to list pods in namespace 'models': HTTP 200: body larger than "
        f"{MAX_BODY_BYTES:,} bytes; stopped reading"
    )
