"""The readiness step in-process against the real simulator process (and a fake Kubernetes API)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from steps import kube_pods
from steps.readiness.__main__ import main
from tests.fakes.kube_api import (
    FAKE_TOKEN,
    FakeKubeAPI,
    FakePod,
    fake_kube_api,
    write_kubeconfig,
)
from tests.fixtures.simulator import StartSimulator

API_KEY = "sk-readiness-secret-4f9c2e"


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def _outputs(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def _main_with_kube_api(
    state: FakeKubeAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]
) -> int:
    """`main(argv)` with KUBECONFIG naming a fake Kubernetes API that serves `state`."""
    with fake_kube_api(state) as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url)))
        return main(argv)


@pytest.fixture(autouse=True)
def _no_kube_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`auto` must not find the developer's own cluster: no KUBECONFIG, an empty HOME."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_readiness_slow_start_waits_then_writes_outputs(
    simulator_factory: StartSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = simulator_factory(
        "--model", "tiny-qwen", "--startup-delay-s", "2", "--max-model-len", "4096",
        wait_healthy=False,
    )  # fmt: skip
    out = tmp_path / "outputs"
    start = time.monotonic()
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--timeout", "30",
            "--interval", "0.5", "--outputs-dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert time.monotonic() - start >= 1.0  # it really waited for the delayed start
    err = capsys.readouterr().err
    assert "waiting: /health: HTTP 503" in err
    assert "Kubernetes check: skipped (no --target-labels)" in err
    assert _outputs(out) == {"max_model_len": "4096", "served_model": "tiny-qwen", "zones": ""}
    assert sim.truth() == []  # readiness sends no completion: the load step warms up itself


@pytest.mark.parametrize(
    ("lengths", "code"),
    [
        (["--input-max", "3000", "--output-max", "1097"], 2),  # 4097 > 4096
        (["--input-tokens", "3000", "--output-tokens", "1096"], 0),  # exactly fits
        (["--input-tokens", "512", "--input-max", "4000", "--output-max", "512"], 2),
    ],
)
def test_readiness_scenario_longer_than_served_context_refused_naming_both_numbers(
    simulator_factory: StartSimulator,
    capsys: pytest.CaptureFixture[str],
    lengths: list[str],
    code: int,
) -> None:
    sim = simulator_factory("--model", "tiny-qwen", "--max-model-len", "4096")
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--timeout", "10", *lengths]
    assert main(argv) == code
    if code:
        line = _last_line(capsys.readouterr().err)
        assert line.startswith("readiness: the scenario's longest request, ")
        assert "exceeds max_model_len 4096 of 'tiny-qwen'" in line
        assert " = 4097, " in line or " = 4512, " in line


def test_readiness_wrong_model_fails_listing_served_models(
    simulator_factory: StartSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = simulator_factory("--model", "tiny-qwen")
    argv = ["--base-url", sim.base_url, "--model-name", "Qwen/Qwen3-8B", "--timeout", "1",
            "--interval", "0.5"]  # fmt: skip
    assert main(argv) == 1
    line = _last_line(capsys.readouterr().err)
    assert line.startswith(f"readiness: {sim.base_url} not ready after 1 s")
    assert line.endswith(
        "model 'Qwen/Qwen3-8B' not in /v1/models (served: ['tiny-qwen']); check --model-name"
    )


def test_readiness_closed_port_fails_after_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    argv = ["--base-url", f"http://127.0.0.1:{port}", "--model-name", "m", "--timeout", "1.5",
            "--interval", "0.4"]  # fmt: skip
    assert main(argv) == 1
    assert time.monotonic() - start >= 1.5
    line = _last_line(capsys.readouterr().err)
    assert line.startswith(f"readiness: http://127.0.0.1:{port} not ready after 1.5 s")
    assert "/health: no answer" in line
    assert line.endswith("check --base-url and the server logs")


class _HeaderRecorder(BaseHTTPRequestHandler):
    """Records request headers; answers like a healthy vLLM serving model 'm' (header check only:
    the simulator does not check keys). A POST would be answered 501: readiness sends none."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self._reply({"data": [{"id": "m"}]} if self.path == "/v1/models" else {})


@pytest.fixture
def header_server() -> Iterator[str]:
    _HeaderRecorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_readiness_api_key_sent_as_bearer_and_never_printed(
    header_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BENCH_API_KEY", API_KEY)
    out = tmp_path / "outputs"
    argv = ["--base-url", header_server, "--model-name", "m", "--api-key-env", "BENCH_API_KEY",
            "--outputs-dir", str(out), "--log-level", "DEBUG"]  # fmt: skip
    assert main(argv) == 0
    assert _HeaderRecorder.seen == [
        ("/health", f"Bearer {API_KEY}"),
        ("/v1/models", f"Bearer {API_KEY}"),
    ]
    captured = capsys.readouterr()
    assert "API key set" in captured.err
    written = "".join(_outputs(out).values())
    assert API_KEY not in captured.out + captured.err + written


def test_readiness_api_key_with_simulator_never_printed(
    simulator_factory: StartSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory("--model", "tiny-qwen")
    monkeypatch.setenv("BENCH_API_KEY", API_KEY)
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--api-key-env",
            "BENCH_API_KEY", "--log-level", "DEBUG"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert API_KEY not in captured.out + captured.err + sim.log_text()


def test_readiness_api_key_env_unset_fails_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BENCH_API_KEY", raising=False)
    argv = ["--base-url", "http://127.0.0.1:9", "--model-name", "m", "--api-key-env",
            "BENCH_API_KEY"]  # fmt: skip
    assert main(argv) == 2
    assert _last_line(capsys.readouterr().err) == (
        "readiness: --api-key-env BENCH_API_KEY: that environment variable is not set"
    )


def test_readiness_k8s_check_writes_zones_of_model_pods(
    simulator_factory: StartSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sim = simulator_factory("--model", "tiny-qwen")
    labels = {"app.kubernetes.io/component": "qwen3-vllm"}
    state = FakeKubeAPI(
        pods=[FakePod("vllm-0", "models", labels, node="n1"), FakePod("vllm-1", "models", labels,
              node="n2")],
        node_zones={"n1": "us-west-2b", "n2": "us-west-2a"},
    )  # fmt: skip
    out = tmp_path / "outputs"
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--target-labels",
            "app.kubernetes.io/component=qwen3-vllm", "--target-namespace", "models",
            "--outputs-dir", str(out)]  # fmt: skip
    assert _main_with_kube_api(state, monkeypatch, tmp_path, argv) == 0
    assert _outputs(out)["zones"] == "us-west-2a,us-west-2b"
    assert state.requests[0].path == "/api/v1/namespaces/models/pods"
    assert state.requests[0].query["labelSelector"] == ["app.kubernetes.io/component=qwen3-vllm"]


def test_readiness_k8s_check_in_cluster_service_account_over_tls(
    simulator_factory: StartSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """As in a pod: KUBERNETES_SERVICE_HOST/PORT, the mounted token and CA, an https API."""
    sim = simulator_factory("--model", "tiny-qwen")
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "token").write_text(FAKE_TOKEN)
    ca.cert_pem.write_to_path(str(mount / "ca.crt"))
    monkeypatch.setattr(kube_pods, "SERVICE_ACCOUNT_DIR", mount)
    labels = {"app": "vllm"}
    state = FakeKubeAPI(
        pods=[FakePod("vllm-0", "models", labels, node="n1")], node_zones={"n1": "us-west-2c"}
    )
    out = tmp_path / "outputs"
    with fake_kube_api(state, tls) as api:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", api.url.rsplit(":", 1)[1])
        argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--target-labels",
                "app=vllm", "--target-namespace", "models", "--k8s-check", "required",
                "--outputs-dir", str(out)]  # fmt: skip
        assert main(argv) == 0
    assert _outputs(out)["zones"] == "us-west-2c"
    assert [r.path for r in state.requests] == [
        "/api/v1/namespaces/models/pods",
        "/api/v1/nodes/n1",
    ]
    assert {r.authorization for r in state.requests} == {f"bearer {FAKE_TOKEN}"}


def test_readiness_k8s_check_no_pods_fails_after_endpoint_ready(
    simulator_factory: StartSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory("--model", "tiny-qwen")
    out = tmp_path / "outputs"
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--target-labels",
            "app=vllm", "--target-namespace", "models", "--outputs-dir", str(out)]  # fmt: skip
    assert _main_with_kube_api(FakeKubeAPI(), monkeypatch, tmp_path, argv) == 1
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("readiness: no pods match labels 'app=vllm' in namespace 'models'")
    assert "could never be scheduled" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "code"), [([], 1), (["--zone-affinity", "required"], 1),
                        (["--zone-affinity", "preferred"], 0), (["--zone-affinity", "off"], 0)]
)  # fmt: skip
def test_readiness_k8s_check_zoneless_nodes_fail_only_with_required_affinity(
    flags: list[str],
    code: int,
    simulator_factory: StartSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A kind/minikube/k3d cluster: the model pod's node has no topology.kubernetes.io/zone."""
    sim = simulator_factory("--model", "tiny-qwen")
    state = FakeKubeAPI(
        pods=[FakePod("vllm-0", "models", {"app": "vllm"}, node="kind-worker")],
        node_zones={"kind-worker": None},
    )
    out = tmp_path / "outputs"
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--target-labels",
            "app=vllm", "--target-namespace", "models", "--outputs-dir", str(out)]  # fmt: skip
    assert _main_with_kube_api(state, monkeypatch, tmp_path, [*argv, *flags]) == code
    if code:
        line = _last_line(capsys.readouterr().err)
        assert line.startswith("readiness: the nodes of the Ready pods matching labels 'app=vllm'")
        assert "install the template with --zone-affinity preferred (or off)" in line
        assert not out.exists()
    else:
        assert _outputs(out)["zones"] == ""


def test_readiness_k8s_check_required_without_credentials_fails_before_waiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    start = time.monotonic()
    argv = ["--base-url", "http://127.0.0.1:9", "--model-name", "m", "--target-labels", "app=x",
            "--k8s-check", "required", "--timeout", "60"]  # fmt: skip
    assert main(argv) == 1
    assert time.monotonic() - start < 5
    assert "no Kubernetes credentials" in _last_line(capsys.readouterr().err)


def test_readiness_k8s_check_auto_without_credentials_says_skipped(
    simulator_factory: StartSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = simulator_factory("--model", "tiny-qwen")
    argv = ["--base-url", sim.base_url, "--model-name", "tiny-qwen", "--target-labels", "app=x",
            "--outputs-dir", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 0
    assert "Kubernetes check: skipped (no in-cluster service account or kubeconfig)" in (
        capsys.readouterr().err
    )
    assert (tmp_path / "o" / "zones").read_text() == ""
