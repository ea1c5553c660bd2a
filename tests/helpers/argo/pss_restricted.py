"""A checker of the Kubernetes Pod Security Standards, "restricted" profile (which includes
"baseline"), over a pod spec in Kubernetes field names.

No maintained PyPI library implements these rules (checkov's Kubernetes checks are a different
set, and nothing understands Argo templates), so each published rule is implemented here, as
written at https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version
"latest"); the anchor of each rule is in its comment. Fields of a rule that say "undefined/nil"
are allowed unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["pss_restricted_violations"]

_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
_SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def pss_restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Every violated rule as `container or pod: rule (value)`; empty = the pod is admitted."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    containers = list(_containers(spec))

    def bad(where: str, rule: str, value: Any) -> None:
        problems.append(f"{where}: {rule} ({value!r})")

    # baseline "HostProcess"
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        bad("pod", "hostProcess", True)
    # baseline "Host Namespaces"
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad("pod", field, spec[field])
    # baseline "HostPath Volumes"; restricted "Volume Types"
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            bad(f"volume {volume['name']}", "hostPath volume", volume["hostPath"])
        elif not kinds <= _RESTRICTED_VOLUMES:
            bad(f"volume {volume['name']}", "volume type not allowed", sorted(kinds))
    # baseline "Sysctls"
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            bad("pod", "unsafe sysctl", sysctl.get("name"))
    # baseline "SELinux" (pod level)
    problems += _selinux("pod", pod_sc.get("seLinuxOptions"))
    # baseline "AppArmor" (pod level)
    if (pod_sc.get("appArmorProfile") or {}).get("type") not in (None, *_SECCOMP_OK):
        bad("pod", "AppArmor profile", pod_sc["appArmorProfile"])
    # restricted "Running as Non-root user": pod runAsUser must not be 0
    if pod_sc.get("runAsUser") == 0:
        bad("pod", "runAsUser 0", 0)
    # baseline/restricted "Seccomp": never Unconfined; restricted: set on the pod or everywhere
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in _SECCOMP_OK:
        bad("pod", "seccompProfile", pod_seccomp)

    for container in containers:
        where = f"container {container.get('name')}"
        sc = container.get("securityContext") or {}
        # baseline "HostProcess"
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            bad(where, "hostProcess", True)
        # baseline "Privileged Containers"
        if sc.get("privileged"):
            bad(where, "privileged", True)
        # baseline "Host Ports"
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                bad(where, "hostPort", port["hostPort"])
        # baseline "AppArmor"
        if (sc.get("appArmorProfile") or {}).get("type") not in (None, *_SECCOMP_OK):
            bad(where, "AppArmor profile", sc["appArmorProfile"])
        # baseline "SELinux"
        problems += _selinux(where, sc.get("seLinuxOptions"))
        # baseline "/proc Mount Type"
        if sc.get("procMount") not in (None, "Default"):
            bad(where, "procMount", sc["procMount"])
        # restricted "Privilege Escalation": must be set to false
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(where, "allowPrivilegeEscalation must be false", sc.get("allowPrivilegeEscalation"))
        # restricted "Running as Non-root": pod true and no container false, or every one true
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and pod_sc.get("runAsNonRoot") is not True):
            bad(where, "runAsNonRoot must be true (pod or container)", non_root)
        # restricted "Running as Non-root user"
        if sc.get("runAsUser") == 0:
            bad(where, "runAsUser 0", 0)
        # restricted "Seccomp": RuntimeDefault or Localhost, here or inherited from the pod
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in _SECCOMP_OK:
            bad(where, "seccompProfile", seccomp)
        elif seccomp is None and pod_seccomp is None:
            bad(where, "seccompProfile unset (pod and container)", None)
        # restricted "Capabilities": drop ALL, add at most NET_BIND_SERVICE
        # (baseline "Capabilities": add only from its list)
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            bad(where, "capabilities.drop must include ALL", capabilities.get("drop"))
        added = set(capabilities.get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            bad(where, "capabilities.add beyond NET_BIND_SERVICE", sorted(added))
        if added - _BASELINE_CAPABILITIES:
            bad(where, "capabilities.add beyond baseline", sorted(added))
    return problems


def _selinux(where: str, options: dict[str, Any] | None) -> list[str]:
    """baseline "SELinux": type from a short list, user and role unset."""
    if not options:
        return []
    problems = []
    if options.get("type", "") not in _SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type ({options['type']!r})")
    problems += [
        f"{where}: seLinuxOptions.{key} ({options[key]!r})"
        for key in ("user", "role")
        if key in options
    ]
    return problems
