"""Which zones the model pods run in, read from the Kubernetes API.

Why: the load step pins itself next to the model with a podAffinity, REQUIRED unless the
template was installed with `--zone-affinity preferred|off` (`topologyKey:
topology.kubernetes.io/zone`, the target label selector and namespace). If no pod matches that
selector in that namespace, a required affinity leaves the load pod Pending instead of failing,
so this step checks the same selector first and fails with the reason. The same holds when the
model pods' nodes carry no zone label at all (kind, minikube, k3d): the affinity then matches no
topology domain, so with `required` affinity that is a failure naming the fix (install the
template with `--zone-affinity preferred` or `off`); the step is told the installed mode. The
zones it finds are an output parameter (recorded with the results: cross-zone latency is a
different benchmark).

Credentials: the pod's service account (in-cluster) or a kubeconfig (KUBECONFIG, else
~/.kube/config). The service account needs `list` on pods in the target namespace and `get` on
nodes (cluster-scoped: a ClusterRole).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from steps.bounded_call import LimitExceeded, call_within, read_capped
from steps.errors import BenchError
from steps.shared import ZONE_LABEL, ZoneAffinity, format_label_selector

__all__ = [
    "CHECK_DEADLINE_S",
    "MAX_BODY_BYTES",
    "KubeCredentials",
    "PodState",
    "ZoneReport",
    "check_zones",
    "find_credentials",
    "pod_states",
    "zone_report",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Where the kubelet mounts a pod's service account: token, ca.crt (and namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: Wall-clock limit on the whole check (the pod list and every node read: connect, TLS, head
#: and body). An API server answers each in well under a second; one behind a proxy that
#: accepts and never answers must not hold readiness (and the endpoint's mutex) past it.
CHECK_DEADLINE_S = 30.0
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
    """One matching pod: Ready condition, node, and that node's zone (None when unknown).
    `node_read`: the node was read, so a None zone means the node has no zone label."""

    name: str
    phase: str
    ready: bool
    node: str | None
    zone: str | None = None
    node_read: bool = False


@dataclass(frozen=True)
class ZoneReport:
    """All matching pods and the sorted zones of the Ready ones."""

    pods: tuple[PodState, ...]
    zones: tuple[str, ...]


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
            )
        )
    return states


def zone_report(
    pods: list[PodState],
    selector: str,
    namespace: str,
    affinity: ZoneAffinity = ZoneAffinity.required,
) -> ZoneReport:
    """Decide: zones of the Ready pods, or a BenchError saying why the load step cannot run."""
    where = f"labels {selector!r} in namespace {namespace!r}"
    if not pods:
        why = (
            f"the load step's required zone affinity ({ZONE_LABEL}) to these pods could never "
            "be scheduled (its pod would stay Pending)"
            if affinity is ZoneAffinity.required
            else "there is no model pod to benchmark"
        )
        raise BenchError(
            f"no pods match {where}: {why}; check --target-labels and --target-namespace"
        )
    ready = [p for p in pods if p.ready]
    if not ready:
        listed = ", ".join(f"{p.name} ({p.phase}, not Ready)" for p in pods[:5])
        raise BenchError(
            f"{len(pods)} pod(s) match {where} but none is Ready: {listed}; "
            "wait for the model pods or check the deployment"
        )
    zones = tuple(sorted({p.zone for p in ready if p.zone}))
    # Zone-less only when every Ready pod's node was read: an unreadable node may have a zone.
    zoneless = not zones and all(p.node_read for p in ready)
    if zoneless:
        nodes = ", ".join(sorted({p.node or "?" for p in ready})[:5])
        if affinity is ZoneAffinity.required:
            raise BenchError(
                f"the nodes of the Ready pods matching {where} ({nodes}) carry no {ZONE_LABEL} "
                "label (kind, minikube and k3d set none), so the load pod's required zone "
                "affinity could never be scheduled: install the template with --zone-affinity "
                f"preferred (or off), or label the nodes with {ZONE_LABEL}"
            )
        log.warning(
            "the model pods' nodes (%s) carry no %s label: with zone affinity %s the load pod "
            "may run on any node",
            nodes,
            ZONE_LABEL,
            affinity.value,
        )
    return ZoneReport(pods=tuple(pods), zones=zones)


class _CappedPool:
    """The API client's urllib3 pool with every body read under MAX_BODY_BYTES and the
    check's deadline (steps/bounded_call.py), error answers included: the client would read
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
class _Budget:
    """The check's wall-clock budget: `deadline` (monotonic) is `limit_s` after it began."""

    deadline: float
    limit_s: float

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


def _load_api_client(creds: KubeCredentials, deadline: float) -> Any:
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
    api_client = client.ApiClient(cfg)
    api_client.rest_client.pool_manager = _CappedPool(api_client.rest_client.pool_manager, deadline)
    return api_client


def _api_error(exc: Exception, what: str) -> BenchError:
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


def _list_pods(core: Any, namespace: str, selector: str, budget: _Budget) -> list[PodState]:
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
        raise _api_error(exc, what) from None
    return pod_states(pod_list)


def _node_zones(core: Any, nodes: Iterable[str], budget: _Budget) -> dict[str, str | None]:
    """Each readable node's zone label (None: the node has none); unreadable nodes are left out."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    zone_of: dict[str, str | None] = {}
    for node in nodes:
        what = f"read node {node!r}"
        try:
            node_obj = budget.call(
                what, partial(core.read_node, node, _request_timeout=budget.per_op)
            )
        except ApiException as exc:
            if exc.status not in (401, 403, 404):
                raise _api_error(exc, what) from None
            # The pods exist, so the load step can be scheduled: zones are a nice-to-have
            # (and an unread node is not taken for a zone-less one).
            log.warning("cannot read node %s (HTTP %s): its zone stays unknown", node, exc.status)
            continue
        except (Urllib3Error, LimitExceeded) as exc:
            raise _api_error(exc, what) from None
        zone_of[node] = (node_obj.metadata.labels or {}).get(ZONE_LABEL)
    return zone_of


def _with_zones(pods: list[PodState], zone_of: Mapping[str, str | None]) -> list[PodState]:
    """`pods` with their node's zone, and whether that node was read."""
    return [
        replace(p, zone=zone_of.get(p.node) if p.node else None, node_read=p.node in zone_of)
        for p in pods
    ]


def check_zones(
    creds: KubeCredentials,
    namespace: str,
    labels: Mapping[str, str],
    affinity: ZoneAffinity = ZoneAffinity.required,
    deadline_s: float = CHECK_DEADLINE_S,
) -> ZoneReport:
    """List the matching pods, read their nodes' zones, and decide (see `zone_report`), all
    within `deadline_s` of wall clock."""
    from kubernetes import client

    selector = format_label_selector(labels)
    budget = _Budget(time.monotonic() + deadline_s, deadline_s)
    with _load_api_client(creds, budget.deadline) as api_client:
        core = client.CoreV1Api(api_client)
        pods = _list_pods(core, namespace, selector, budget)
        ready_nodes = sorted({p.node for p in pods if p.ready and p.node})
        pods = _with_zones(pods, _node_zones(core, ready_nodes, budget))
    report = zone_report(pods, selector, namespace, affinity)
    not_ready = [p.name for p in pods if not p.ready]
    if not_ready:
        log.warning("%d matching pod(s) not Ready: %s", len(not_ready), ", ".join(not_ready[:5]))
    log.info(
        "%d Ready pod(s) match %r in %r; zones: %s",
        len(pods) - len(not_ready),
        selector,
        namespace,
        ",".join(report.zones) or "unknown",
    )
    return report
