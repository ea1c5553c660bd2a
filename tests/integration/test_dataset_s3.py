"""The dataset step against a real S3 server (SeaweedFS): the object fetched and described, and
a missing object, a missing bucket and a dead endpoint each one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from steps.dataset.__main__ import main
from tests.fixtures.s3 import S3Server

pytestmark = pytest.mark.s3

_DATA = json.dumps(
    [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}]
).encode()


def test_dataset_s3_object_downloaded_with_manifest(s3_env: S3Server, tmp_path: Path) -> None:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="data/sharegpt.json", Body=_DATA)
    out = tmp_path / "out"
    argv = ["--dataset", s3_env.uri("data/sharegpt.json"), "--out", str(out),
            "--s3-endpoint-url", s3_env.endpoint_url]  # fmt: skip
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "sharegpt.json").read_bytes() == _DATA
    assert manifest["sha256"] == hashlib.sha256(_DATA).hexdigest()
    assert (manifest["kind"], manifest["file"], manifest["exchanges"]) == ("s3", "sharegpt.json", 1)
    assert manifest["revision"] == hashlib.md5(_DATA).hexdigest()  # the ETag of a single PUT


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("KEY", "no object 'nope/missing.json' in bucket"),
        ("s3://no-such-bucket/x.json", "bucket 'no-such-bucket' does not exist"),
    ],
)
def test_dataset_s3_missing_object_or_bucket_exits_1_one_line(
    s3_env: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    uri: str,
    expected: str,
) -> None:
    source = s3_env.uri("nope/missing.json") if uri == "KEY" else uri
    argv = ["--dataset", source, "--out", str(tmp_path), "--s3-endpoint-url", s3_env.endpoint_url]
    assert main(argv) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("dataset: download of ") and expected in last


def test_dataset_s3_endpoint_down_exits_1_naming_it(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: refused
    argv = ["--dataset", s3_env.uri("x.json"), "--out", str(tmp_path), "--s3-endpoint-url", dead]
    assert main(argv) == 1
    assert f"cannot connect to {dead}" in capsys.readouterr().err.strip().splitlines()[-1]
