"""The model pods, listed from the Kubernetes API under a wall-clock deadline and a size cap.

Two steps ask the API about the same pods (`target_labels` in `target_namespace`): readiness
checks that they exist, are Ready and which zones they run in (steps/readiness/zones.py); the
load step scrapes each Ready pod's `/metrics` directly (steps/load/scrape.py), because behind a
Service `/metrics` answers from one pod at a time. Both need only `list` on pods in the target
namespace (readiness also `get` on nodes), which the rendered RBAC grants.

Credentials: the pod's service account (in-cluster) or a kubeconfig (KUBECONFIG, else
~/.kube/config). The `kubernetes` client takes timeouts per socket operation and reads whole
bodies into memory, so every call here runs under one deadline (steps/bounded_call.py) and
every body is read under MAX_BODY_BYTES: an API server or proxy that accepts and never answers
costs the caller a bounded wait, never a hang.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from steps.bounded_call import LimitExceeded, call_within, read_capped
from steps.errors import BenchError
from steps.shared import format_label_selector

__all__ = [
    "MAX_BODY_BYTES",
    "SERVICE_ACCOUNT_DIR",
    "ApiBudget",
    "KubeCredentials",
    "PodState",
    "api_client",
    "api_error",
    "find_credentials",
    "list_pods",
    "matching_pods",
    "pod_states",
]

T = TypeVar("T")

#: Where the kubelet mounts a pod's service account: token, ca.crt (and namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: Largest API answer read: a pod list of a few hundred model pods is a few MB.
MAX_BODY_BYTES = 32 << 20
_CHUNK_BYTES = 64 << 10


@dataclass(frozen=True)
class KubeCredentials:
    """Where API credentials come from: the service account, or a kubeconfig path (list)."""

    in_cluster: bool
    kubeconfig: str | None = None


@dataclass(frozen=True)
class PodState:
    """One matching pod: Ready condition, node, pod IP, and (readiness) its node's zone.
    `node_read`: the node was read, so a None zone means the node has no zone label."""

    name: str
    phase: str
    ready: bool
    node: str | None
    zone: str | None = None
    node_read: bool = False
    ip: str | None = None


def find_credentials(env: Mapping[str, str], home: Path) -> KubeCredentials | None:
    """In-cluster service account first (as kubectl in a pod), then KUBECONFIG, ~/.kube/config."""
    if env.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").is_file():
        return KubeCredentials(in_cluster=True)
    kubeconfig = env.get("KUBECONFIG", "")
    if kubeconfig:
        if any(Path(p).expanduser().is_file() for p in kubeconfig.split(":") if p):
            return KubeCredentials(in_cluster=False, kubeconfig=kubeconfig)
        return None
    default = home / ".kube" / "config"
    if default.is_file():
        return KubeCredentials(in_cluster=False, kubeconfig=str(default))
    return None


def pod_states(pods: Any) -> list[PodState]:
    """Pods of a V1PodList as PodStates (zones not yet known)."""
    states = []
    for pod in pods.items:
        conditions = (pod.status.conditions if pod.status else None) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        states.append(
            PodState(
                name=pod.metadata.name,
                phase=(pod.status.phase if pod.status else None) or "Unknown",
                ready=ready,
                node=pod.spec.node_name if pod.spec else None,
                ip=(pod.status.pod_ip if pod.status else None) or None,
            )
        )
    return states


class _CappedPool:
    """The API client's urllib3 pool with every body read under MAX_BODY_BYTES and the
    caller's deadline (steps/bounded_call.py), error answers included: the client would read
    any body whole into memory (`ApiException` reads it before anything can look)."""

    def __init__(self, pool: Any, deadline: float) -> None:
        self._pool = pool
        self._deadline = deadline

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        import urllib3

        kwargs["preload_content"] = False
        raw = self._pool.request(method, url, **kwargs)
        try:
            pieces = raw.stream(_CHUNK_BYTES, decode_content=True)
            body = read_capped(pieces, MAX_BODY_BYTES, self._deadline, f"HTTP {raw.status}")
        finally:
            raw.close()  # a body not read to its end must not go back to the pool
            raw.release_conn()
        # What the client reads from a preloaded response, built from the capped body.
        return urllib3.HTTPResponse(
            body=io.BytesIO(body), headers=raw.headers, status=raw.status, reason=raw.reason
        )


@dataclass(frozen=True)
class ApiBudget:
    """A wall-clock budget for API calls: `deadline` (monotonic) is `limit_s` after it began."""

    deadline: float
    limit_s: float

    @classmethod
    def starting_now(cls, limit_s: float) -> ApiBudget:
        """A budget of `limit_s` from now."""
        return cls(time.monotonic() + limit_s, limit_s)

    @property
    def per_op(self) -> tuple[float, float]:
        """The client's (connect, read) timeout: per socket operation too, so a call given up
        on ends by itself."""
        return (self.limit_s, self.limit_s)

    def call(self, what: str, call: Callable[[], T]) -> T:
        """`call()` done by the deadline, or a BenchError naming `what`."""
        done, result = call_within(self.deadline, call, "k8s-api")
        if not done:
            raise BenchError(
                f"Kubernetes API: no complete answer to {what} within {self.limit_s:g} s "
                "(an API server or proxy that accepts and does not answer?)"
            )
        return result  # type: ignore[return-value]


def api_client(creds: KubeCredentials, deadline: float) -> Any:
    """A `kubernetes.client.ApiClient` whose every body read ends by `deadline` (monotonic)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        if creds.in_cluster:
            # What load_incluster_config does, with the mount read from SERVICE_ACCOUNT_DIR.
            config.incluster_config.InClusterConfigLoader(
                token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
                cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            ).load_and_set(cfg)
        else:
            config.load_kube_config(
                config_file=creds.kubeconfig, client_configuration=cfg, persist_config=False
            )
    except config.ConfigException as exc:
        source = "in-cluster service account" if creds.in_cluster else creds.kubeconfig
        raise BenchError(f"Kubernetes credentials from {source} unusable: {exc}") from None
    result = client.ApiClient(cfg)
    result.rest_client.pool_manager = _CappedPool(result.rest_client.pool_manager, deadline)
    return result


def api_error(exc: Exception, what: str) -> BenchError:
    """One line for a failed API call: refused (with the permission it needs), failed, or
    unreachable."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return BenchError(
                f"Kubernetes API refused to {what} (HTTP {exc.status} {exc.reason}): the "
                "service account needs list on pods in the target namespace and get on nodes"
            )
        return BenchError(f"Kubernetes API failed to {what}: HTTP {exc.status} {exc.reason}")
    if isinstance(exc, LimitExceeded):
        return BenchError(f"Kubernetes API failed to {what}: {exc}")
    return BenchError(f"Kubernetes API unreachable to {what}: {type(exc).__name__}: {exc}")


def list_pods(core: Any, namespace: str, selector: str, budget: ApiBudget) -> list[PodState]:
    """The pods matching `selector` in `namespace` (zones not yet known)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    what = f"list pods in namespace {namespace!r}"
    try:
        pod_list = budget.call(
            what,
            lambda: core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=budget.per_op
            ),
        )
    except (ApiException, Urllib3Error, LimitExceeded) as exc:
        raise api_error(exc, what) from None
    return pod_states(pod_list)


def matching_pods(
    creds: KubeCredentials, namespace: str, labels: Mapping[str, str], deadline_s: float
) -> list[PodState]:
    """Every pod matching `labels` in `namespace`, listed within `deadline_s` of wall clock
    (BenchError otherwise)."""
    from kubernetes import client

    budget = ApiBudget.starting_now(deadline_s)
    with api_client(creds, budget.deadline) as api:
        return list_pods(client.CoreV1Api(api), namespace, format_label_selector(labels), budget)
