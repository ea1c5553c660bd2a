"""A fake Argo Server behind a `requests.Session`: records each request, answers from a script
(or from `FakeArgoServer`, which keeps state as the real server does), and validates every
request body against Argo's JSON Schema (a fake that accepts anything would let a malformed
submit pass)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.helpers.argo.schema import schema_errors

#: (method, URL path suffix) -> schema kind of the body, or of one key of it.
_BODY_KINDS: list[tuple[str, str, str, str | None]] = [
    ("POST", "/submit", "WorkflowSubmitRequest", None),
    ("POST", "/workflow-templates/benchmarking", "WorkflowTemplateCreateRequest", None),
    ("PUT", "/workflow-templates/benchmarking/", "WorkflowTemplateUpdateRequest", None),
    ("POST", "/cron-workflows/benchmarking", "CronWorkflow", "cronWorkflow"),
    ("PUT", "/cron-workflows/benchmarking/", "CronWorkflow", "cronWorkflow"),
]


@dataclass
class Recorded:
    method: str
    url: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[Recorded], tuple[int, Any]]


class FakeArgoSession(requests.Session):
    """`handler(request) -> (status, json body)`; every request is kept in `.requests`."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[Recorded] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        data = kwargs.get("data")
        body = json.loads(data) if data else None
        recorded = Recorded(method.upper(), url, dict(kwargs.get("headers") or {}), body)
        self.requests.append(recorded)
        for verb, suffix, kind, key in _BODY_KINDS:
            if recorded.method == verb and suffix in url and body is not None:
                errors = schema_errors(body[key] if key else body, kind)
                assert errors == [], f"{verb} {url}: body fails the Argo schema: {errors}"
        status, answer = self.handler(recorded)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(answer).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


def version_body(version: str) -> dict[str, str]:
    """What Argo Server answers on GET /api/v1/version (fields of v4.0.5's
    pkg/apis/workflow/v1alpha1/version_types.go)."""
    return {
        "version": version,
        "buildDate": "2026-06-12T10:00:00Z",
        "gitCommit": "03fbf9f1db191297d60dcb99f121e62ad7013169",
        "gitTag": version if version.startswith("v") and "+" not in version else "",
        "gitTreeState": "clean",
        "goVersion": "go1.24.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _not_found(kind: str, name: str) -> tuple[int, Any]:
    return 404, {"code": 5, "message": f'{kind}.argoproj.io "{name}" not found'}


@dataclass
class FakeArgoServer:
    """A stateful Argo Server (use as the handler of a FakeArgoSession): it stores
    WorkflowTemplates and CronWorkflows as the API server does, adding the metadata the server
    owns (uid, resourceVersion, creationTimestamp, the creator label) and refusing a PUT whose
    resourceVersion is stale, records submits, and answers the version endpoint."""

    version: str = "v4.0.6"
    namespace: str = "benchmarking"
    stored: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    submitted: list[dict[str, Any]] = field(default_factory=list)
    workflow_polls: list[Any] = field(default_factory=list)
    _serial: int = 0

    def _store(self, route: str, obj: dict[str, Any]) -> dict[str, Any]:
        self._serial += 1
        stored = json.loads(json.dumps(obj))
        meta = stored.setdefault("metadata", {})
        meta.update(
            uid=f"0000-{self._serial}",
            resourceVersion=str(1000 + self._serial),
            creationTimestamp="2026-12-01T07:00:00Z",
            generation=self._serial,
        )
        meta.setdefault("labels", {})["workflows.argoproj.io/creator"] = "system-serviceaccount"
        self.stored[(route, meta["name"])] = stored
        return stored

    def __call__(self, request: Recorded) -> tuple[int, Any]:
        path = request.url.split("/api/v1/", 1)[1]
        parts = path.split("/")
        if request.method == "GET" and path == "version":
            return 200, version_body(self.version)
        if parts[0] in ("workflow-templates", "cron-workflows") and parts[1] == self.namespace:
            route = parts[0]
            key = "template" if route == "workflow-templates" else "cronWorkflow"
            kind = "workflowtemplates" if route == "workflow-templates" else "cronworkflows"
            if request.method == "GET" and len(parts) == 3:
                found = self.stored.get((route, parts[2]))
                return (200, found) if found else _not_found(kind, parts[2])
            if request.method == "POST" and len(parts) == 2:
                name = request.body[key]["metadata"]["name"]
                if (route, name) in self.stored:
                    return 409, {"code": 6, "message": f'{kind} "{name}" already exists'}
                return 200, self._store(route, request.body[key])
            if request.method == "PUT" and len(parts) == 3:
                current = self.stored.get((route, parts[2]))
                if current is None:
                    return _not_found(kind, parts[2])
                sent = request.body[key]["metadata"].get("resourceVersion")
                if sent != current["metadata"]["resourceVersion"]:
                    return 409, {"code": 10, "message": "the object has been modified"}
                return 200, self._store(route, request.body[key])
        if request.method == "POST" and path == f"workflows/{self.namespace}/submit":
            self.submitted.append(request.body)
            name = f"{request.body['resourceName']}-x7k2p"
            return 200, {
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"workflowTemplateRef": {"name": request.body["resourceName"]}},
            }
        polling = request.method == "GET" and path.startswith(f"workflows/{self.namespace}/")
        if polling and self.workflow_polls:
            return 200, self.workflow_polls.pop(0)
        raise AssertionError(f"unexpected {request.method} {request.url}")
