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

Credentials and the bounded pod listing are steps/kube_pods.py's (the load step lists the same
pods to scrape them). The service account needs `list` on pods in the target namespace and `get`
on nodes (cluster-scoped: a ClusterRole).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from steps.bounded_call import LimitExceeded
from steps.errors import BenchError
from steps.kube_pods import (
    ApiBudget,
    KubeCredentials,
    PodState,
    api_client,
    api_error,
    list_pods,
)
from steps.shared import ZONE_LABEL, ZoneAffinity, format_label_selector

__all__ = ["CHECK_DEADLINE_S", "ZoneReport", "check_zones", "zone_report"]

log = logging.getLogger(__name__)

#: Wall-clock limit on the whole check (the pod list and every node read: connect, TLS, head
#: and body). An API server answers each in well under a second; one behind a proxy that
#: accepts and never answers must not hold readiness (and the endpoint's mutex) past it.
CHECK_DEADLINE_S = 30.0


@dataclass(frozen=True)
class ZoneReport:
    """All matching pods and the sorted zones of the Ready ones."""

    pods: tuple[PodState, ...]
    zones: tuple[str, ...]


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


def _node_zones(core: Any, nodes: Iterable[str], budget: ApiBudget) -> dict[str, str | None]:
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
                raise api_error(exc, what) from None
            # The pods exist, so the load step can be scheduled: zones are a nice-to-have
            # (and an unread node is not taken for a zone-less one).
            log.warning("cannot read node %s (HTTP %s): its zone stays unknown", node, exc.status)
            continue
        except (Urllib3Error, LimitExceeded) as exc:
            raise api_error(exc, what) from None
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
    budget = ApiBudget.starting_now(deadline_s)
    with api_client(creds, budget.deadline) as api:
        core = client.CoreV1Api(api)
        pods = list_pods(core, namespace, selector, budget)
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
