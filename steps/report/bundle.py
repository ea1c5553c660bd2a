"""The run's result directory (`--out`): exactly what gets uploaded, complete before any upload.

Inputs are gathered here first (summary files, records, run.json, the effective config), so if S3
fails the one directory named in the error message holds everything. JSON files pass through
`redact_tree` on the way in; records.parquet (numbers and status strings) is linked or copied.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steps.errors import BenchError, UsageError
from steps.redact import SECRET_ENV_VARS, redact_tree
from steps.server_metrics import SERVER_METRICS_FILE

__all__ = [
    "SUMMARY_FILES",
    "bundle_files",
    "collect_inputs",
    "read_json",
    "read_run_config",
    "secrets_to_scrub",
    "write_json",
]

log = logging.getLogger(__name__)

#: Files the aggregate step writes into its --out directory.
SUMMARY_FILES = ("summary.json", "summary.parquet")
LIFECYCLE_GLOB = "*_lifecycle_metrics.json"

#: Upload order: small descriptive files first, so a partial upload still says what the run was.
_LAST = (".png", ".parquet")


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON; unreadable or invalid files are a UsageError naming `what` and the path."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"{what}: {path} is not valid JSON ({exc})") from None


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _same_file(src: Path, dst: Path) -> bool:
    return dst.exists() and src.resolve() == dst.resolve()


def _copy_binary(src: Path, dst: Path) -> None:
    if _same_file(src, dst):
        return
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # records can be hundreds of MB: share the inode when possible
    except OSError:
        shutil.copyfile(src, dst)


def _copy_json(src: Path, dst: Path, what: str, secret_values: Sequence[str]) -> Any:
    data = redact_tree(read_json(src, what), secret_values)
    write_json(dst, data)
    return data


def read_run_config(records: Sequence[Path]) -> Mapping[str, Any] | None:
    """The effective config from the first shard's run.json (None when there is none)."""
    run_json = records[0].parent / "run.json" if records else None
    if run_json is None or not run_json.is_file():
        return None
    run = read_json(run_json, "--records run.json")
    config = run.get("config") if isinstance(run, dict) else None
    return config if isinstance(config, dict) else None


def collect_inputs(
    summary_dir: Path,
    records: Sequence[Path],
    out: Path,
    secret_values: Sequence[str],
) -> None:
    """Copy summary files, records and run.json into `out` (redacted); write config.json.

    One records shard keeps the names `records.parquet` / `run.json` (and the load step's
    `server_metrics.parquet` when it is beside them); with several, shard i is
    `records_shard_{i}.parquet` / `run_shard_{i}.json` / `server_metrics_shard_{i}.parquet`
    (i from 0, in --records order).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"--out: cannot create {out} ({exc.strerror})") from None
    for name in SUMMARY_FILES:
        src = summary_dir / name
        if not src.is_file():
            raise UsageError(f"--summary: {summary_dir} has no {name} (run steps.aggregate first)")
        if name.endswith(".json"):
            _copy_json(src, out / name, f"--summary {name}", secret_values)
        else:
            _copy_binary(src, out / name)
    for src in sorted(summary_dir.glob(LIFECYCLE_GLOB)):
        _copy_json(src, out / src.name, f"--summary {src.name}", secret_values)

    for index, records_file in enumerate(records):
        suffix = "" if len(records) == 1 else f"_shard_{index}"
        _copy_binary(records_file, out / f"records{suffix}.parquet")
        server_metrics = records_file.parent / SERVER_METRICS_FILE
        if server_metrics.is_file():
            _copy_binary(server_metrics, out / f"server_metrics{suffix}.parquet")
        run_json = records_file.parent / "run.json"
        if not run_json.is_file():
            log.warning("no run.json next to %s: effective config not included", records_file)
            continue
        run = _copy_json(run_json, out / f"run{suffix}.json", "--records run.json", secret_values)
        if index == 0 and isinstance(run, dict) and isinstance(run.get("config"), dict):
            write_json(out / "config.json", run["config"])


def bundle_files(out: Path) -> list[Path]:
    """Every file under `out` in upload order (descriptive files first, PNGs and Parquet last)."""
    files = [p for p in out.rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: (p.suffix in _LAST, p.suffix == ".parquet", p.name))


def secrets_to_scrub(config: Mapping[str, Any] | None) -> list[str]:
    """Current values of secret env vars, including those the run's `config` names.

    Env values are read only to scrub them from what the report writes.
    """
    names = list(SECRET_ENV_VARS)
    if config is not None:
        for section, key in (("server", "api_key_env"), ("tokenizer", "token_env")):
            part = config.get(section)
            if isinstance(part, dict) and isinstance(part.get(key), str):
                names.append(part[key])
    return [value for name in names if (value := os.environ.get(name))]
