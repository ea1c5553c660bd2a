"""Hugging Face Hub access for the steps that fetch from it (tokenizer, dataset): how to reach
the Hub, read from the environment, and its errors translated into one line naming the fix.

Read here rather than left to huggingface_hub, whose constants are frozen when it is first
imported: a step must honour the environment it is run with (HF_HUB_OFFLINE=1 with a filled
cache is how an air-gapped cluster runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from steps.errors import BenchError

__all__ = ["HubAccess", "hub_access_from_env", "hub_fetch_errors", "translate_hub_error"]

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class HubAccess:
    """How to reach the Hub, read from the environment in `main` (never at import time)."""

    token: SecretStr | None = None
    cache_dir: Path | None = None
    offline: bool = False
    endpoint: str | None = None


def hub_access_from_env(env: Mapping[str, str], token_env: str) -> HubAccess:
    """Token from `token_env`; cache dir, offline flag and endpoint as huggingface_hub reads them
    (see the module docstring for why here)."""
    token = env.get(token_env) or None
    if env.get("HF_HUB_CACHE"):
        cache_dir: Path | None = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        cache_dir = Path(env["HF_HOME"]) / "hub"
    else:
        cache_dir = None
    offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    endpoint = env.get("HF_ENDPOINT") or None
    return HubAccess(SecretStr(token) if token else None, cache_dir, offline, endpoint)


def hub_fetch_errors() -> tuple[type[Exception], ...]:
    """What a Hub download raises that `translate_hub_error` turns into one line: the Hub's
    own errors, and httpx2's transport errors (huggingface_hub 2.x lets them surface)."""
    import httpx2
    from huggingface_hub import errors

    return (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, httpx2.HTTPError, OSError)


def translate_hub_error(
    exc: Exception,
    repo_id: str,
    revision: str,
    access: HubAccess,
    source_flag: str,
    alternative: str,
    repo_type: str = "model",
) -> BenchError:
    """Map a huggingface_hub / network error to one line naming the fix; `source_flag` is the
    flag that named the repo, `alternative` what to use instead when the Hub is out of reach."""
    from huggingface_hub import errors

    token = "a token is set" if access.token is not None else "no token is set"
    page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    if isinstance(exc, errors.GatedRepoError):
        return BenchError(
            f"Hub repo {repo_id!r} is gated and {token}: accept its terms at "
            f"{page} with an account that has access and put that "
            "account's token in HF_TOKEN (or the variable named by --token-env)"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return BenchError(
            f"Hub repo {repo_id!r} not found ({token}; private repos answer the same): check "
            f"{source_flag}, or set HF_TOKEN / --token-env for a private repo"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return BenchError(
            f"revision {revision!r} not found in Hub repo {repo_id!r}; check --revision"
        )
    if isinstance(exc, errors.LocalEntryNotFoundError):
        why = "HF_HUB_OFFLINE is set" if access.offline else "the Hub is unreachable"
        return BenchError(
            f"{repo_id!r} at revision {revision!r} is not in the Hugging Face cache and {why}: "
            f"run once with network access to fill the cache, or {alternative}"
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return BenchError(f"Hub request for {repo_id!r} failed with HTTP {status}: {exc}")
    # What is left is the transport: httpx errors (DNS, refused, TLS) and OSError.
    return BenchError(
        f"cannot reach the Hugging Face Hub for {repo_id!r} ({type(exc).__name__}: {exc}): "
        f"check network access / HF_ENDPOINT, or {alternative}"
    )
