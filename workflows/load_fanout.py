"""The load spread over N pods (`--load-pods N`, fixed at render/install time): the coordinator
daemon, each load pod's shard in the artifact repository, and the paths aggregate and report
read them from.

What Argo does with it (argo-workflows v4.1, read in its source):
- The coordinator is a daemon task (`daemon: true`); a daemon's node records its pod IP while
  it runs (operator.go: "only update Pod IP for daemoned nodes") and `{{tasks.<name>.ip}}`
  resolves to it (operator.go buildLocalScope: `ref.IP`). Its container's readinessProbe (a TCP
  connect to the coordinator's port) keeps the dependents waiting until it listens; the daemon
  is killed when the DAG ends. A bare `depends: coordinator` holds on Daemoned.
- The load task fans out with `withSequence: {count: N}`: N pods, `{{item}}` = 0..N-1, each
  the load template with its zone affinity and resources.
- Argo aggregates only output PARAMETERS of a fanned-out task (processAggregateNodeOutputs),
  never artifacts, and only of children that succeeded. So each pod writes its files as
  key-only artifacts under one prefix of the artifact repository,
  `{{workflow.name}}/load-shards/pod-<i>/`, and aggregate and report take that prefix as one
  input artifact: the S3 driver downloads a key that is no object but a prefix as a directory
  (artifacts/s3/s3.go loadS3Artifact: NoSuchKey, then IsDirectory, then GetDirectory). Pods that
  exited 1 (some requests failed) are there too, and a pod that wrote nothing leaves its
  `pod-<i>` directory missing, which aggregate refuses in one line naming the path.
- A fanned-out task's group node has no exitCode: the report gets `--load-exit-code ""` (no
  check) and judges the shards by `complete` and the error rate instead.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import Artifact, NoneArchiveStrategy, Resources, S3Artifact
from hera.workflows import models as m

__all__ = [
    "COORDINATOR_PORT",
    "COORDINATOR_TASK",
    "coordinator_address",
    "coordinator_fields",
    "shard_dirs",
    "shard_input",
    "shard_output",
]

#: The DAG task (and template) of the start coordinator.
COORDINATOR_TASK = "coordinator"
#: steps/load/coordinator.py's port (not imported: the workflows layer knows steps by flags).
COORDINATOR_PORT = 7878
_SHARDS_KEY = "{{workflow.name}}/load-shards"
_COORDINATOR_RESOURCES = Resources(
    cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="256Mi"
)


def coordinator_address() -> str:
    """What each load pod passes as `--coordinator`: the daemon's pod IP from Argo."""
    return f"{{{{tasks.{COORDINATOR_TASK}.ip}}}}:{COORDINATOR_PORT}"


def coordinator_fields(pods: int) -> dict[str, Any]:
    """The coordinator container's own fields (the common ones come from the step builder)."""
    return {
        "args": ["coordinate", "--load-pods", str(pods), "--port", str(COORDINATOR_PORT)],
        "daemon": True,
        "readiness_probe": m.Probe(
            tcp_socket=m.TCPSocketAction(port=m.IntOrString(COORDINATOR_PORT)),
            period_seconds=2,
        ),
        "resources": _COORDINATOR_RESOURCES,
    }


def shard_output(name: str, path: str) -> Artifact:
    """A load pod's output `name` stored at its own key under the shards prefix, named as its
    file (kept as is: the prefix is downloaded as a directory of plain files)."""
    key = f"{_SHARDS_KEY}/pod-{{{{inputs.parameters.pod_index}}}}/{path.rsplit('/', 1)[-1]}"
    return S3Artifact(
        name=name,
        path=path,
        key=key,
        archive=NoneArchiveStrategy(),
        optional=True,
    )


def shard_input(path: str) -> Artifact:
    """Every load pod's files, downloaded as `path`/pod-<i>/ (optional: no pod wrote any ->
    the step fails on the missing shard directories in one line)."""
    return S3Artifact(name="shards", path=path, key=_SHARDS_KEY, optional=True)


def shard_dirs(base: str, pods: int) -> list[str]:
    """The shard directories aggregate and report are given, one per pod."""
    return [f"{base}/pod-{i}" for i in range(pods)]
