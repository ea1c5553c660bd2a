"""Download only the tokenizer files of a Hugging Face Hub repo, through the shared HF cache.

Why only those: a model repo is gigabytes of weights; the load step needs a few MB. Why the
cache: re-runs and air-gapped pods reuse what was fetched once (HF_HUB_OFFLINE=1 or no network
both fall back to the cached snapshot). huggingface_hub's exceptions become one-line errors
that name the fix (steps.hf_hub).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from steps.hf_hub import HubAccess, hub_fetch_errors, translate_hub_error
from steps.tokenizer.files import TOKENIZER_PATTERNS

__all__ = ["HubSnapshot", "download_tokenizer"]

log = logging.getLogger(__name__)

#: What to use instead of the Hub when it is out of reach.
_ALTERNATIVE = "use a local directory or offline:qwen as --tokenizer"


@dataclass(frozen=True)
class HubSnapshot:
    """A cached snapshot directory and the commit it resolved to."""

    path: Path
    commit: str


def download_tokenizer(repo_id: str, revision: str, access: HubAccess) -> HubSnapshot:
    """Fetch (or find in the cache) the tokenizer files of `repo_id` at `revision`."""
    from huggingface_hub import snapshot_download

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
    except hub_fetch_errors() as exc:
        raise translate_hub_error(
            exc, repo_id, revision, access, "--tokenizer", _ALTERNATIVE
        ) from None
    snapshot = Path(str(path))
    return HubSnapshot(path=snapshot, commit=snapshot.name)
