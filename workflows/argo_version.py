"""The oldest Argo Workflows release the manifests support, and the check of a server against it.

Why 4.0.6: the template uses `synchronization.mutexes` and the CronWorkflow `schedules` (both
Argo >= 3.6), and up to 4.0.5 a controller restart drops the mutex held by a running
`workflowTemplateRef` workflow (its synchronization lives only in the stored template spec, which
the restart path did not read), so a second run could start on the same endpoint beside it. Argo
PR #16160 fixed that in 4.1.0 and, cherry-picked, in 4.0.6 (and 3.7.15, a line whose CRDs these
manifests are not validated against). Argo's own `GetVersion` reports a release as its git tag
(`v4.0.6`) and anything else as `<VERSION file>+<commit>[.dirty]` or `+unknown`: those builds
cannot be placed, so they get a warning rather than a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from steps.errors import BenchError

__all__ = ["MIN_ARGO_VERSION", "check_argo_version", "parse_release"]

MIN_ARGO_VERSION = (4, 0, 6)
_MIN_TEXT = "v" + ".".join(map(str, MIN_ARGO_VERSION))
#: A release tag, optionally a pre-release of it (v4.1.0-rc1); build metadata (+...) = dev build.
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$")


def parse_release(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release or pre-release tag; None for dev builds and garbage."""
    match = _RELEASE.match(version.strip())
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check_argo_version(version: str, where: str, warn: Callable[[str], None]) -> None:
    """Refuse a release older than MIN_ARGO_VERSION; warn (and go on) when it cannot be told."""
    release = parse_release(version)
    if release is None:
        warn(
            f"argo: cannot tell the version of {where} ({version!r}, a development build?): "
            f"continuing; these manifests need Argo Workflows >= {_MIN_TEXT}"
        )
        return
    if release < MIN_ARGO_VERSION:
        raise BenchError(
            f"argo: {where} runs Argo Workflows {version}, these manifests need >= {_MIN_TEXT} "
            "(mutexes held by template runs survive a controller restart only from there, "
            "argo PR #16160): upgrade Argo Workflows"
        )
