"""Names and URLs that users type and the steps turn into requests, S3 keys and paths.

Each is checked where it enters (flags, config.yml, workflow parameters, a server's answer), so a
bad one fails in one line before any work, never at upload time after a whole benchmark. Every
checker raises ValueError (pydantic validators and the steps' own callers turn it into a
UsageError) and returns the value unchanged; `UnsafeValueError` marks a failure whose input must
not be quoted back, and `echo_input` is how every error formatter decides.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BUCKET_NAME_PATTERN",
    "ENV_NAME_PATTERN",
    "UnsafeValueError",
    "check_base_url",
    "check_bucket_name",
    "check_endpoint_url",
    "check_model_name",
    "check_run_id",
    "check_scenario_name",
    "echo_input",
    "new_run_id",
]

#: S3 bucket naming rules (3-63 characters: lowercase letters, digits, dots, hyphens; a letter or
#: digit at both ends). botocore raises a ParamValidationError traceback for anything else.
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"

#: The name of an environment variable that holds a secret (`api_key_env`, `token_env`): POSIX
#: shell syntax, so the same name works in a pod's `env:` and in `export NAME=...`.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


#: Characters of a request target's path (RFC 3986 `pchar` and `/`); anything else, a space
#: above all, would make the load step's request line malformed.
_PATH_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: One S3 key segment: scenario names (also a packaged `steps/scenarios/<name>.yml`) and run ids
#: (also a `--history-dir` directory and the X-Request-Id prefix; the default
#: `YYYYMMDDTHHMMSSZ-<6 hex>` has this shape).
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Served model ids longer than this are not names (vLLM's are a few dozen characters).
_MAX_MODEL_NAME = 256


class UnsafeValueError(ValueError):
    """A rejected value that may hold a secret (`user:password@`, `?key=`): never quote it."""


def echo_input(error: Mapping[str, Any]) -> str:
    """` (got 'value')` for a pydantic error's scalar input, "" for containers and unsafe values."""
    ctx = error.get("ctx") or {}
    seen = error.get("input")
    if isinstance(ctx.get("error"), UnsafeValueError) or not isinstance(seen, str | int | float):
        return ""
    if isinstance(seen, str) and repr(seen) in str(error.get("msg", "")):
        return ""  # the message quotes it already
    return f" (got {seen!r})"


def check_base_url(url: str) -> str:
    """`http(s)://host[:port][/path]`, with no credentials, query, fragment or odd characters.

    The clients drop a query string and a fragment, but the URL itself is written to run.json,
    summaries, the report, S3 and the rendered manifest (mutex name included): a `?key=` there is
    a leaked credential. Credentials go in the environment variable named by `api_key_env`.
    """
    if _CONTROL.search(url) or " " in url:
        raise UnsafeValueError("base_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeValueError("base_url is not a valid http(s) URL") from None
    if parts.username is not None or parts.password is not None:
        raise UnsafeValueError(
            "base_url must not hold credentials (user:password@); "
            "name the environment variable holding a token in api_key_env"
        )
    if "?" in url or "#" in url:
        raise UnsafeValueError(
            "base_url must not have a query string or fragment (requests drop "
            "them, results would keep them); put a token in the environment variable named by "
            "api_key_env"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be http(s)://host[:port][/path]")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("base_url port must be a number 1-65535")
    if not _PATH_CHARS.match(parts.path):
        raise ValueError(
            f"base_url path {parts.path!r} has characters a request line cannot carry "
            "(percent-encode them)"
        )
    return url


def check_model_name(name: str) -> str:
    """A served model id: may hold `/` (`Qwen/Qwen3-8B` is two S3 key levels), never a path trick.

    It becomes part of S3 keys and of `--history-dir` paths, so `..`, `.`, empty segments, a
    leading `/` and control characters would write or read outside the run's prefix.
    """
    if not name or len(name) > _MAX_MODEL_NAME:
        raise ValueError(f"model name must be 1-{_MAX_MODEL_NAME} characters")
    if _CONTROL.search(name) or "\\" in name:
        raise ValueError(f"model name {name!r} holds a control character or a backslash")
    if name.startswith("/") or any(seg in ("", ".", "..") for seg in name.split("/")):
        raise ValueError(
            f"model name {name!r} must be segments separated by single '/', none of them "
            "'.' or '..' (it becomes part of S3 keys and paths)"
        )
    return name


def _check_key_segment(value: str, what: str) -> str:
    """One S3 key segment (and file name): the shared rule of scenario names and run ids."""
    if not _KEY_SEGMENT.match(value):
        raise ValueError(
            f"{what} {value!r}: use letters, digits, '.', '_', '-' (max 64, starting with a "
            "letter or digit)"
        )
    return value


def check_scenario_name(name: str) -> str:
    """A scenario name: one S3 key segment, and the file name of a packaged scenario."""
    return _check_key_segment(name, "scenario")


def new_run_id(now: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSSZ-<6 hex>`: sorts by time (regression finds the previous run by it),
    unique enough across pods and local runs."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """A run id: the load step refuses at start what the report step could not store at the end."""
    return _check_key_segment(run_id, "run id")


def check_bucket_name(name: str) -> str:
    """An S3 bucket name that S3 (and botocore's client-side check) accepts."""
    if not re.match(BUCKET_NAME_PATTERN, name) or ".." in name:
        raise ValueError(
            f"bucket {name!r}: S3 bucket names are 3-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def check_endpoint_url(url: str) -> str:
    """An S3-compatible endpoint, `http(s)://host[:port]`: botocore raises a traceback (and
    only when the client is built) for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = 0
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UnsafeValueError("S3 endpoint must be an http(s)://host[:port] URL")
    if parts.username is not None or parts.password is not None or "?" in url or "#" in url:
        raise UnsafeValueError(
            "S3 endpoint must not hold credentials or a query string; AWS credentials come "
            "from the standard chain (AWS_* environment, IRSA, Pod Identity)"
        )
    if _CONTROL.search(url) or " " in url:
        raise UnsafeValueError("S3 endpoint must not contain spaces or control characters")
    return url
