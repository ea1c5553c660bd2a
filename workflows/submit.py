"""Talk to Argo Server through Hera's WorkflowsService: upsert, submit from the template, follow.

Connection settings follow the `argo` CLI's environment (ARGO_SERVER host:port, ARGO_SECURE,
ARGO_TOKEN, ARGO_NAMESPACE, ARGO_BASE_HREF, ARGO_INSECURE_SKIP_VERIFY), each overridable by a
flag. Hera joins API paths with `urljoin`, so a base href (`/argo/`) needs its trailing slash or
requests silently go to the server root (hera #872): the host is normalised here once.
Server errors become one-line `BenchError`s that say what to check; the token is never printed,
not even when the server's error message echoes it (it is scrubbed with steps/redact.py).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from hera.exceptions import HeraException, NotFound
from hera.workflows import CronWorkflow, WorkflowsService, WorkflowTemplate
from hera.workflows import models as m
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticDeprecatedSince20,
    SecretStr,
    ValidationError,
)

from steps.bounded_call import DeadlineExceeded, LimitExceeded, call_within, read_capped
from steps.errors import BenchError, UsageError
from steps.redact import redact_text
from workflows.argo_version import check_argo_version
from workflows.params import BaselineParams
from workflows.step_templates import REPORT_OUTPUTS

__all__ = [
    "ARGO_CALL_DEADLINE_S",
    "ARGO_MAX_BODY_BYTES",
    "ArgoConnection",
    "BoundedSession",
    "RunOutcome",
    "check_server_version",
    "connection_from",
    "installed_template",
    "make_service",
    "submit_from_template",
    "upsert",
    "wait_for",
]

_FINISHED = ("Succeeded", "Failed", "Error")
#: Wall-clock limit on one Argo Server API call: it answers in well under a second, and
#: `--wait` polls again after each answer.
ARGO_CALL_DEADLINE_S = 60.0
#: Largest API answer read: a finished workflow with its every node is a few hundred KB.
ARGO_MAX_BODY_BYTES = 64 << 20
_CHUNK_BYTES = 64 << 10


class ArgoConnection(BaseModel):
    """Where Argo Server is and how to authenticate (token held as a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str = Field(min_length=1, description="host:port or URL of Argo Server")
    secure: bool = Field(default=True, description="https unless ARGO_SECURE=false")
    token: SecretStr | None = Field(default=None, description="bearer token (ARGO_TOKEN)")
    namespace: str = Field(min_length=1, description="namespace of the workflows")
    base_href: str = Field(default="", description="UI/API path prefix (ARGO_BASE_HREF)")
    insecure_skip_verify: bool = Field(default=False, description="skip TLS verification")

    @property
    def host(self) -> str:
        """Server URL with scheme, base href and the trailing slash urljoin needs."""
        root = (
            self.server
            if "://" in self.server
            else (("https://" if self.secure else "http://") + self.server)
        )
        href = self.base_href.strip("/")
        return root.rstrip("/") + "/" + (href + "/" if href else "")


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


def connection_from(
    environ: Mapping[str, str],
    *,
    server: str | None = None,
    namespace: str | None = None,
    base_href: str | None = None,
    insecure_skip_verify: bool | None = None,
    default_namespace: str,
) -> ArgoConnection:
    """Flags win over the environment; a missing server is a usage error naming both."""
    server = server or environ.get("ARGO_SERVER", "")
    if not server:
        raise UsageError(
            "argo: no Argo Server address: set ARGO_SERVER (host:port) or pass --argo-server"
        )
    token = environ.get("ARGO_TOKEN", "")
    return ArgoConnection(
        server=server,
        secure=_truthy(environ.get("ARGO_SECURE", "true")),
        token=SecretStr(token) if token else None,
        namespace=namespace or environ.get("ARGO_NAMESPACE") or default_namespace,
        base_href=base_href if base_href is not None else environ.get("ARGO_BASE_HREF", ""),
        insecure_skip_verify=(
            insecure_skip_verify
            if insecure_skip_verify is not None
            else _truthy(environ.get("ARGO_INSECURE_SKIP_VERIFY", "false"))
        ),
    )


class BoundedSession(requests.Session):
    """A `requests.Session` whose every call (connect, TLS, head, body) ends within
    `deadline_s` of wall clock and reads at most `max_body_bytes`.

    Why: Hera's WorkflowsService calls `session.request` without a timeout, so `install`,
    `submit` and `--wait` hung forever on an Argo Server (or a proxy before it) that accepted
    the connection and never answered; requests' own timeout bounds each socket read only, so
    a server dripping bytes would still hold it (steps/bounded_call.py).
    """

    def __init__(
        self,
        deadline_s: float = ARGO_CALL_DEADLINE_S,
        max_body_bytes: int = ARGO_MAX_BODY_BYTES,
    ) -> None:
        super().__init__()
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes

    def request(  # type: ignore[override]
        self, method: str, url: str, **kwargs: Any
    ) -> requests.Response:
        deadline = time.monotonic() + self.deadline_s
        # Per socket operation too, so the abandoned thread ends by itself.
        kwargs.setdefault("timeout", self.deadline_s)
        kwargs["stream"] = True

        def call() -> requests.Response:
            response = super(BoundedSession, self).request(method, url, **kwargs)
            with contextlib.closing(response):
                # A stream=True response read in full, as requests would without stream.
                response._content = read_capped(
                    response.iter_content(_CHUNK_BYTES),
                    self.max_body_bytes,
                    deadline,
                    f"HTTP {response.status_code}",
                )
            return response

        done, response = call_within(deadline, call, "argo-api")
        if not done or response is None:
            raise DeadlineExceeded(f"no complete answer within {self.deadline_s:g} s")
        return response


def make_service(
    connection: ArgoConnection, session: requests.Session | None = None
) -> WorkflowsService:
    """Hera's service for this connection, every call bounded (BoundedSession); `session` is
    the test seam (a recording fake)."""
    return WorkflowsService(
        host=connection.host,
        verify_ssl=not connection.insecure_skip_verify,
        token=connection.token.get_secret_value() if connection.token else None,
        namespace=connection.namespace,
        session=session if session is not None else BoundedSession(),
    )


@contextmanager
def _argo_errors(action: str, service: WorkflowsService) -> Iterator[None]:
    """Translate HTTP and connection failures into one line that says what to check."""
    try:
        with warnings.catch_warnings():
            # hera 7.1 serialises requests with pydantic's deprecated `.json()`: noise, not ours.
            warnings.filterwarnings("ignore", category=PydanticDeprecatedSince20)
            yield
    except HeraException as exc:
        status = getattr(exc, "status_code", None)
        hints = {
            401: "the token is missing, wrong or expired: set ARGO_TOKEN (e.g. `argo auth token`)",
            403: f"the token's account may not do this in namespace '{service.namespace}'",
            404: (
                f"not found at {service.host}: check ARGO_SERVER, ARGO_BASE_HREF and that "
                f"namespace '{service.namespace}' exists"
            ),
            409: "the object was changed or created concurrently: run the command again",
        }
        hint = hints.get(status or 0, "see the server message")
        detail = " ".join(str(exc).removeprefix("Server returned status code ").split())
        # The server may echo the request's Authorization header (a proxy's error page, say).
        token = service.token or ""
        detail = redact_text(detail, [token, token.removeprefix("Bearer ")])
        raise BenchError(
            f"argo: {action} failed ({status}): {hint}; server said: {detail}"
        ) from None
    except LimitExceeded as exc:
        raise BenchError(
            f"argo: {action} failed: {exc} from {service.host} (a server or proxy that accepts "
            "and does not answer?); check ARGO_SERVER"
        ) from None
    except requests.exceptions.SSLError:
        raise BenchError(
            f"argo: {action} failed: TLS verification of {service.host} failed "
            "(ARGO_INSECURE_SKIP_VERIFY=true to skip, or ARGO_SECURE=false for plain http)"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise BenchError(
            f"argo: {action} failed: cannot reach {service.host} ({type(exc).__name__}); "
            "check ARGO_SERVER"
        ) from None


def check_server_version(service: WorkflowsService, warn: Callable[[str], None]) -> None:
    """Refuse an Argo Server older than the manifests need (GET /api/v1/version)."""
    where = f"Argo Server {service.host}"
    with _argo_errors("read the server version", service):
        try:
            version = service.get_version().version
        except ValidationError:
            # A body without every field Hera's model requires: a build we cannot place.
            version = "(incomplete version answer)"
    check_argo_version(version, where, warn)


def installed_template(name: str, service: WorkflowsService) -> dict[str, Any] | None:
    """The WorkflowTemplate as installed (API JSON shape), or None when there is none."""
    with _argo_errors(f"get WorkflowTemplate '{name}'", service):
        try:
            template = service.get_workflow_template(name, namespace=service.namespace)
        except NotFound:
            return None
    dumped: dict[str, Any] = template.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def upsert(resource: WorkflowTemplate | CronWorkflow, service: WorkflowsService) -> None:
    """Create or update (GET for resourceVersion, then PUT) a template or cron workflow."""
    resource.workflows_service = service
    kind = type(resource).__name__
    with _argo_errors(f"install {kind} '{resource.name}'", service):
        resource.update()


def submit_from_template(
    template_name: str,
    params: BaselineParams,
    service: WorkflowsService,
    labels: str = "trigger=cli",
) -> str:
    """Submit a Workflow from the template with EVERY parameter set; returns its name."""
    namespace = service.namespace or ""
    request = m.WorkflowSubmitRequest(
        namespace=namespace,
        resource_kind="WorkflowTemplate",
        resource_name=template_name,
        submit_options=m.SubmitOpts(
            parameters=[f"{k}={v}" for k, v in params.to_arguments().items()],
            labels=labels,
        ),
    )
    with _argo_errors(f"submit from WorkflowTemplate '{template_name}'", service):
        workflow = service.submit_workflow(request, namespace=namespace)
    if workflow.metadata.name is None:
        raise BenchError("argo: submit returned a workflow without a name")
    return workflow.metadata.name


@dataclass(frozen=True)
class RunOutcome:
    """How a followed run ended: its phase and the report step's output parameters."""

    phase: str
    message: str
    report: dict[str, str]


def _task_phases(workflow: m.Workflow) -> dict[str, str]:
    """DAG task name -> phase, from the workflow's status nodes."""
    nodes = workflow.status.nodes if workflow.status and workflow.status.nodes else {}
    phases: dict[str, str] = {}
    for node in nodes.values():
        if node.type in ("Pod", "Retry") and node.display_name and node.phase:
            phases[node.display_name.split("(")[0]] = node.phase
    return phases


def _report_outputs(workflow: m.Workflow) -> dict[str, str]:
    nodes = workflow.status.nodes if workflow.status and workflow.status.nodes else {}
    for node in nodes.values():
        if node.template_name == "report" and node.outputs and node.outputs.parameters:
            values = {p.name: p.value or "" for p in node.outputs.parameters}
            if "verdict" in values:
                return {k: values.get(k, "") for k in REPORT_OUTPUTS}
    return {}


def wait_for(
    name: str,
    service: WorkflowsService,
    echo: Callable[[str], None],
    poll_s: float = 10.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> RunOutcome:
    """Poll until the workflow finishes, echoing each task's phase changes."""
    seen: dict[str, str] = {}
    while True:
        with _argo_errors(f"get workflow '{name}'", service):
            workflow = service.get_workflow(name, namespace=service.namespace)
        for task, phase in sorted(_task_phases(workflow).items()):
            if seen.get(task) != phase:
                echo(f"{task}: {phase}")
                seen[task] = phase
        status = workflow.status
        phase = status.phase if status and status.phase else "Pending"
        if phase in _FINISHED:
            message = status.message if status and status.message else ""
            return RunOutcome(phase, message, _report_outputs(workflow))
        sleep(poll_s)
