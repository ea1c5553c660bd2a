"""Download only the tokenizer files of a Hugging Face Hub repo, through the shared HF cache.

Why only those: a model repo is gigabytes of weights; the load step needs a few MB. Why the
cache: re-runs and air-gapped pods reuse what was fetched once (HF_HUB_OFFLINE=1 or no network
both fall back to the cached snapshot). huggingface_hub's exceptions are translated here into
one-line errors that name the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from steps.errors import BenchError
from steps.tokenizer.files import TOKENIZER_PATTERNS

__all__ = [
    "HubAccess",
    "HubSnapshot",
    "download_tokenizer",
    "hub_access_from_env",
    "translate_hub_error",
]

log = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class HubAccess:
    """How to reach the Hub, read from the environment in `main` (never at import time)."""

    token: SecretStr | None = None
    cache_dir: Path | None = None
    offline: bool = False
    endpoint: str | None = None


def hub_access_from_env(env: Mapping[str, str], token_env: str) -> HubAccess:
    """Token from `token_env`; cache dir, offline flag and endpoint as huggingface_hub reads them.

    Read here rather than left to huggingface_hub, whose constants are frozen when it is first
    imported: the step must honour the environment it is run with.
    """
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


@dataclass(frozen=True)
class HubSnapshot:
    """A cached snapshot directory and the commit it resolved to."""

    path: Path
    commit: str


def translate_hub_error(
    exc: Exception, repo_id: str, revision: str, token_set: bool, offline: bool
) -> BenchError:
    """Map a huggingface_hub / network error to one line naming the fix."""
    from huggingface_hub import errors

    token = "a token is set" if token_set else "no token is set"
    if isinstance(exc, errors.GatedRepoError):
        return BenchError(
            f"Hub repo {repo_id!r} is gated and {token}: accept its terms at "
            f"https://huggingface.co/{repo_id} with an account that has access and put that "
            "account's token in HF_TOKEN (or the variable named by --token-env)"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return BenchError(
            f"Hub repo {repo_id!r} not found ({token}; private repos answer the same): check "
            "--tokenizer, or set HF_TOKEN / --token-env for a private repo"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return BenchError(
            f"revision {revision!r} not found in Hub repo {repo_id!r}; check --revision"
        )
    if isinstance(exc, errors.LocalEntryNotFoundError):
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub is unreachable"
        return BenchError(
            f"{repo_id!r} at revision {revision!r} is not in the Hugging Face cache and {why}: "
            "run once with network access to fill the cache, or use a local directory or "
            "offline:qwen as --tokenizer"
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return BenchError(f"Hub request for {repo_id!r} failed with HTTP {status}: {exc}")
    # What is left is the transport: httpx errors (DNS, refused, TLS) and OSError.
    return BenchError(
        f"cannot reach the Hugging Face Hub for {repo_id!r} ({type(exc).__name__}: {exc}): "
        "check network access / HF_ENDPOINT, or use a local directory or offline:qwen"
    )


def download_tokenizer(repo_id: str, revision: str, access: HubAccess) -> HubSnapshot:
    """Fetch (or find in the cache) the tokenizer files of `repo_id` at `revision`."""
    import httpx2  # huggingface_hub 2.x HTTP client: its transport errors surface unwrapped
    from huggingface_hub import errors, snapshot_download

    token = access.token
    log.info(
        "Hub source %r revision %r (token %s, cache %s%s)",
        repo_id,
        revision,
        "set" if token else "not set",
        access.cache_dir or "default",
        ", offline" if access.offline else "",
    )
    try:
        path = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=access.cache_dir,
            allow_patterns=list(TOKENIZER_PATTERNS),
            token=token.get_secret_value() if token else None,
            local_files_only=access.offline,
            endpoint=access.endpoint,
        )
    except (
        errors.HfHubHTTPError,
        errors.LocalEntryNotFoundError,
        httpx2.HTTPError,
        OSError,
    ) as exc:
        raise translate_hub_error(
            exc, repo_id, revision, token is not None, access.offline
        ) from None
    snapshot = Path(str(path))
    return HubSnapshot(path=snapshot, commit=snapshot.name)
