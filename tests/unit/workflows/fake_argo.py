"""A fake Argo Server behind a `requests.Session`: records each request, answers from a script,
and validates every request body against Argo's JSON Schema (a fake that accepts anything would
let a malformed submit pass)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from tests.unit.workflows.argo_schema import schema_errors

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
