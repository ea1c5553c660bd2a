"""Bring the conversations file into `--out`: copied from a local path, downloaded from S3, or
taken from the Hugging Face cache (fetched into it when the Hub is reachable and
HF_HUB_OFFLINE is not set). Each returns the file's path under `--out` and the revision to
record (the Hub commit, the S3 ETag, or None)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from steps.dataset.source import parse_s3_uri
from steps.errors import BenchError, UsageError
from steps.hf_hub import HubAccess, hub_fetch_errors, translate_hub_error
from steps.s3_client import endpoint_name, make_s3_client, translate_s3_errors

__all__ = ["fetch_hub", "fetch_local", "fetch_s3"]

log = logging.getLogger(__name__)

_ALTERNATIVE = "use a local file or an s3:// URI as --dataset"


def _local_file(source: Path) -> Path:
    """A file, or the one .json file of a directory."""
    if source.is_file():
        return source
    files = sorted(p for p in source.glob("*.json") if p.is_file() and p.name != "manifest.json")
    if len(files) != 1:
        found = ", ".join(p.name for p in files[:5]) or "none"
        raise UsageError(
            f"--dataset {source}: a directory must hold exactly one .json conversations file; "
            f"found {found}"
        )
    return files[0]


def fetch_local(source: str, out: Path) -> tuple[Path, None]:
    """Copy a local file (or a directory's one .json file) into `out`; a file already in `out`
    is passed through."""
    src = _local_file(Path(source).expanduser())
    dest = out / src.name
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    return dest, None


def fetch_s3(source: str, out: Path, endpoint_url: str | None) -> tuple[Path, str | None]:
    """Download `s3://bucket/key` into `out` (credentials: boto3's standard chain)."""
    from botocore.exceptions import ClientError

    obj = parse_s3_uri(source)
    client = make_s3_client(endpoint_url)
    dest = out / Path(obj.key).name
    action = f"download of {source}"
    log.info("downloading %s from %s", source, endpoint_name(client))
    with translate_s3_errors(client, obj.bucket, action, bucket_flag="the --dataset bucket"):
        try:
            head = client.head_object(Bucket=obj.bucket, Key=obj.key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) not in ("404", "NoSuchKey"):
                raise
            raise _missing(client, obj.bucket, obj.key, action) from None
        client.download_file(obj.bucket, obj.key, str(dest))
    etag = head.get("ETag")
    return dest, str(etag).strip('"') if etag else None


def _missing(client: Any, bucket: str, key: str, action: str) -> BenchError:
    """What a 404 on an object means: a HEAD answers it without a body for a missing bucket
    too, so the bucket is asked (a 404 on it: the bucket is missing, else the key)."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchBucket"):
            return BenchError(
                f"{action}: bucket {bucket!r} does not exist at {endpoint_name(client)}; "
                "check --dataset"
            )
        raise
    return BenchError(
        f"{action}: no object {key!r} in bucket {bucket!r} at {endpoint_name(client)}; "
        "check --dataset"
    )


def fetch_hub(
    repo_id: str, filename: str, revision: str, access: HubAccess, out: Path
) -> tuple[Path, str]:
    """`filename` of the Hub dataset repo `repo_id` at `revision`, through the HF cache."""
    from huggingface_hub import errors, hf_hub_download

    log.info(
        "Hub dataset %r file %r revision %r (token %s, cache %s%s)",
        repo_id,
        filename,
        revision,
        "set" if access.token else "not set",
        access.cache_dir or "default",
        ", offline" if access.offline else "",
    )
    try:
        cached = Path(
            hf_hub_download(
                repo_id,
                filename,
                repo_type="dataset",
                revision=revision,
                cache_dir=access.cache_dir,
                token=access.token.get_secret_value() if access.token else None,
                local_files_only=access.offline,
                endpoint=access.endpoint,
            )
        )
    except errors.RemoteEntryNotFoundError:
        raise BenchError(
            f"Hub dataset {repo_id!r} at {revision!r} has no file {filename!r}; "
            "check --dataset-file"
        ) from None
    except hub_fetch_errors() as exc:
        raise translate_hub_error(
            exc, repo_id, revision, access, "--dataset", _ALTERNATIVE, repo_type="dataset"
        ) from None
    dest = out / Path(filename).name
    shutil.copyfile(cached, dest)  # the cache holds symlinks into blobs: a real file for Argo
    return dest, cached.parent.name
