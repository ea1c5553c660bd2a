"""Scrub secrets from text and JSON-like data before it is logged, written or uploaded. Pure.

Used where server-controlled text meets our output (an error body that echoes a header, say)
and by the load step (run.json's config: secrets are env var *names* there, but `api.headers`
may carry a key) and the report, the last gate before a bucket that many people read. Three
ways: values under secret-looking keys (and header names), values shaped like known credentials
(AWS access key ids, Hugging Face and OpenAI-style tokens), and any literal value of a secret
environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_ENV_VARS", "redact_text", "redact_tree", "redact_url"]

REDACTED = "***REDACTED***"

#: Environment variables whose values are secrets wherever they show up (plus the ones the run's
#: config names in `server.api_key_env` / `tokenizer.token_env`, added by the caller).
SECRET_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "OPENAI_API_KEY",
)

#: Keys whose string values are secrets, matched as whole `_`/`-`-separated words ("tokenizer"
#: and "max_tokens" are not secrets; "X-Api-Key" and "api-key" are). `*_env` keys hold variable
#: names, not values: kept.
_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|token|secret|password|passwd|credentials?|authorization|cookie"
    r"|access[_-]key([_-]id)?|session[_-]token)($|[_-])",
    re.I,
)
#: HTTP header names (the keys of a `headers` map, e.g. config `api.headers`) whose values are
#: secrets: anything naming a key, token, secret, password, credential, cookie, session or
#: signature, and every auth scheme (Authorization, Proxy-Authorization, X-Auth-...).
_SECRET_HEADER = re.compile(
    r"key|token|secret|passw|credential|cookie|session|signature|auth", re.I
)
_ENV_NAME_KEY = re.compile(r"_env$", re.I)

_SECRET_SHAPES = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key id
    r"|\bhf_[A-Za-z0-9]{20,}\b"  # Hugging Face token
    r"|\bsk-[A-Za-z0-9_-]{20,}\b"  # OpenAI-style API key
)

#: Values shorter than this are not treated as literal secrets: a 2-character "secret" would
#: redact every occurrence of those characters in the report.
_MIN_LITERAL_LEN = 6


def _literals(secret_values: Iterable[str]) -> list[str]:
    return sorted({v for v in secret_values if len(v) >= _MIN_LITERAL_LEN}, key=len, reverse=True)


def redact_text(text: str, secret_values: Iterable[str] = ()) -> str:
    """`text` with credential-shaped substrings and the given literal secret values replaced."""
    for value in _literals(secret_values):
        text = text.replace(value, REDACTED)
    return _SECRET_SHAPES.sub(REDACTED, text)


def redact_url(url: str) -> str:
    """A server-given URL (a redirect's Location) fit to quote in a record's error.

    Where tokens travel in a URL, it shows nothing: `user:password@` is dropped and a query
    string or fragment becomes one REDACTED marker; scheme, host and path stay (they say where
    the server points), credential shapes scrubbed, at most 200 characters.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return REDACTED
    host = parts.netloc.rpartition("@")[2]
    hidden = "?" + REDACTED if parts.query or parts.fragment else ""
    return redact_text(urlunsplit((parts.scheme, host, parts.path, "", ""))[:200]) + hidden


def redact_tree(data: Any, secret_values: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like tree with secrets redacted (by key name, shape and literal value)."""
    literals = _literals(secret_values)

    def walk(node: Any, key: str | None) -> Any:
        if isinstance(node, Mapping):
            if key is not None and key.lower() == "headers":
                return {
                    k: REDACTED if _SECRET_HEADER.search(str(k)) and v else walk(v, str(k))
                    for k, v in node.items()
                }
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str):
            if key and _SECRET_KEY.search(key) and not _ENV_NAME_KEY.search(key) and node:
                return REDACTED
            return redact_text(node, literals)
        return node

    return walk(data, None)
