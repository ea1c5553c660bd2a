"""A tiny Kubernetes API server (real HTTP on 127.0.0.1) for the readiness step's pod/zone check.

No API server can run on the test machines, so this serves the two read routes the step uses,
`GET /api/v1/namespaces/{ns}/pods` and `GET /api/v1/nodes/{name}`. Responses are built from the
`kubernetes` client's own models and serialized with `ApiClient.sanitize_for_serialization`, so
they have the real API's shape (camelCase keys, `kind`/`apiVersion`), and the real client
deserializes them. Requests are checked against the API: unknown routes get a 404 `Status`,
query parameters the list endpoint does not define get a 400, and every request is recorded
(path, query, Authorization header) for tests to assert on.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client

__all__ = ["FakeKubeAPI", "FakePod", "RecordedRequest", "fake_kube_api", "write_kubeconfig"]

FAKE_TOKEN = "fake-sa-token"
#: Written out, not imported from steps.shared: the fake serves what a real API serves, so a typo
#: in the step's constant fails the tests instead of being mirrored here.
ZONE_LABEL = "topology.kubernetes.io/zone"
# Query parameters of `list_namespaced_pod` in the Kubernetes API (core/v1 list options).
_LIST_PARAMS = frozenset(
    {
        "pretty", "allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
        "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch",
    }
)  # fmt: skip
_PODS = re.compile(r"^/api/v1/namespaces/([a-z0-9-]+)/pods$")
_NODE = re.compile(r"^/api/v1/nodes/([A-Za-z0-9.-]+)$")


@dataclass(frozen=True)
class FakePod:
    """A pod as the test wants it: namespace, labels, readiness and the node it runs on."""

    name: str
    namespace: str
    labels: dict[str, str]
    ready: bool = True
    node: str | None = "node-a"
    phase: str = "Running"
    ip: str | None = None  # status.podIP (None: not yet assigned)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class FakeKubeAPI:
    """Cluster state served by the fake, and the requests it received."""

    pods: list[FakePod] = field(default_factory=list)
    node_zones: dict[str, str | None] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""


def _serialize(obj: Any) -> Any:
    return client.ApiClient().sanitize_for_serialization(obj)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return _serialize(
        client.V1Status(
            api_version="v1", kind="Status", status="Failure", code=code, reason=reason,
            message=message,
        )
    )  # fmt: skip


def _pod(p: FakePod) -> client.V1Pod:
    return client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(name=p.name, namespace=p.namespace, labels=p.labels),
        spec=client.V1PodSpec(
            node_name=p.node, containers=[client.V1Container(name="vllm", image="vllm/vllm")]
        ),
        status=client.V1PodStatus(
            pod_ip=p.ip,
            phase=p.phase,
            conditions=[
                client.V1PodCondition(type="Ready", status="True" if p.ready else "False"),
                client.V1PodCondition(type="PodScheduled", status="True"),
            ],
        ),
    )


def _matches(labels: dict[str, str], selector: str) -> bool:
    wanted = dict(item.split("=", 1) for item in selector.split(",") if item)
    return all(labels.get(k) == v for k, v in wanted.items())


def _handler(state: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on `state.requests` instead."""

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            state.requests.append(
                RecordedRequest(url.path, query, self.headers.get("Authorization"))
            )
            # As the API server's bearer authenticator: the scheme is case-insensitive (the
            # in-cluster loader sends "bearer"), the token exact.
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or token != FAKE_TOKEN:
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            if match := _PODS.match(url.path):
                unknown = set(query) - _LIST_PARAMS
                if unknown:
                    self._send(400, _status(400, "BadRequest", f"unknown params {unknown}"))
                    return
                selector = query.get("labelSelector", [""])[0]
                items = [
                    _pod(p)
                    for p in state.pods
                    if p.namespace == match.group(1) and _matches(p.labels, selector)
                ]
                body = client.V1PodList(
                    api_version="v1", kind="PodList", items=items,
                    metadata=client.V1ListMeta(resource_version="1"),
                )  # fmt: skip
                self._send(200, _serialize(body))
                return
            if (match := _NODE.match(url.path)) and match.group(1) in state.node_zones:
                zone = state.node_zones[match.group(1)]
                labels = {"kubernetes.io/hostname": match.group(1)}
                if zone is not None:
                    labels[ZONE_LABEL] = zone
                node = client.V1Node(
                    api_version="v1", kind="Node",
                    metadata=client.V1ObjectMeta(name=match.group(1), labels=labels),
                )  # fmt: skip
                self._send(200, _serialize(node))
                return
            self._send(404, _status(404, "NotFound", f"{url.path} not found"))

    return Handler


@contextmanager
def fake_kube_api(state: FakeKubeAPI, tls: ssl.SSLContext | None = None) -> Iterator[FakeKubeAPI]:
    """Serve `state` on a free 127.0.0.1 port in a thread; `state.url` is its address.

    With `tls` (a server context) it serves https, as the in-cluster API does.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "http" if tls is None else "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_kubeconfig(path: Path, server_url: str, namespace: str = "default") -> Path:
    """A kubeconfig pointing at `server_url` with the fake's bearer token."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
                "users": [{"name": "fake", "user": {"token": FAKE_TOKEN}}],
                "contexts": [
                    {
                        "name": "fake",
                        "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                    }
                ],
                "current-context": "fake",
            }
        )
    )
    return path
