"""The tokenizer step in-process: offline, local and Hub-cache sources, real Qwen tokenizer."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from steps.tokenizer.__main__ import main

QWEN_HELLO_IDS = [9707, 1879, 11]
SNAPSHOT_REV = "0123456789abcdef0123456789abcdef01234567"


def _encode_hello(directory: Path) -> list[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return list(tok.encode("Hello world,", add_special_tokens=False))


def _manifest(directory: Path) -> dict[str, object]:
    return json.loads((directory / "manifest.json").read_text())


def _hub_cache(root: Path, repo_id: str, source: Path) -> Path:
    """Lay out a real huggingface_hub cache entry (blobs are plain files here) for repo_id."""
    repo_dir = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / SNAPSHOT_REV
    snapshot.mkdir(parents=True)
    for f in source.iterdir():
        shutil.copyfile(f, snapshot / f.name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(SNAPSHOT_REV)
    return root


@pytest.fixture
def no_hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_tokenizer_offline_qwen_writes_loadable_qwen_tokenizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub_env: None
) -> None:
    out = tmp_path / "tok"
    assert main(["--tokenizer", "offline:qwen", "--out", str(out)]) == 0
    assert _encode_hello(out) == QWEN_HELLO_IDS
    manifest = _manifest(out)
    assert manifest["source"] == "offline:qwen"
    assert manifest["kind"] == "offline"
    assert manifest["vocab_size"] == 151669
    assert str(manifest["revision"]).startswith("qwen-tokenizer==")
    assert "151669 ids" in capsys.readouterr().out


def test_tokenizer_local_directory_copies_files_with_sha256(
    tmp_path: Path, qwen_tokenizer_dir: Path, no_hub_env: None
) -> None:
    out = tmp_path / "tok"
    assert main(["--tokenizer", str(qwen_tokenizer_dir), "--out", str(out)]) == 0
    assert _encode_hello(out) == QWEN_HELLO_IDS
    manifest = _manifest(out)
    assert manifest["kind"] == "local"
    assert manifest["revision"] is None
    files = manifest["files"]
    assert isinstance(files, list)
    assert {f["name"] for f in files} == {p.name for p in qwen_tokenizer_dir.iterdir()}
    for entry in files:
        data = (qwen_tokenizer_dir / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)


def test_tokenizer_local_directory_is_out_passes_through(
    tmp_path: Path, qwen_tokenizer_dir: Path, no_hub_env: None
) -> None:
    out = tmp_path / "tok"
    shutil.copytree(qwen_tokenizer_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["--tokenizer", str(out), "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"} == before
    assert _manifest(out)["kind"] == "local"


def test_tokenizer_stale_files_in_out_are_replaced(
    tmp_path: Path, qwen_tokenizer_dir: Path, no_hub_env: None
) -> None:
    out = tmp_path / "tok"
    out.mkdir()
    (out / "vocab.json").write_text("{}")  # a previous tokenizer's leftover
    assert main(["--tokenizer", str(qwen_tokenizer_dir), "--out", str(out)]) == 0
    assert not (out / "vocab.json").exists()
    assert _encode_hello(out) == QWEN_HELLO_IDS


def test_tokenizer_hub_cache_offline_uses_cached_snapshot(
    tmp_path: Path,
    qwen_tokenizer_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = _hub_cache(tmp_path / "hub", "Org/Qwen-Tiny", qwen_tokenizer_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MY_HF_TOKEN", "hf_secret_value_never_printed")
    out = tmp_path / "tok"
    argv = ["--tokenizer", "Org/Qwen-Tiny", "--out", str(out), "--token-env", "MY_HF_TOKEN"]
    # main() logs to the (captured) stderr at DEBUG, so everything it could leak is in `captured`.
    assert main([*argv, "--log-level", "DEBUG"]) == 0
    assert _encode_hello(out) == QWEN_HELLO_IDS
    manifest = _manifest(out)
    assert manifest["kind"] == "hub"
    assert manifest["revision"] == SNAPSHOT_REV
    captured = capsys.readouterr()
    everything = captured.out + captured.err + (out / "manifest.json").read_text()
    assert "hf_secret_value_never_printed" not in everything
    assert "Hub token set (from $MY_HF_TOKEN)" in captured.err


def test_tokenizer_hub_cache_offline_pinned_revision_resolves(
    tmp_path: Path, qwen_tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch, no_hub_env: None
) -> None:
    cache = _hub_cache(tmp_path / "hub", "Org/Qwen-Tiny", qwen_tokenizer_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "tok"
    argv = ["--tokenizer", "Org/Qwen-Tiny", "--out", str(out), "--revision", SNAPSHOT_REV]
    assert main(argv) == 0
    assert _manifest(out)["revision"] == SNAPSHOT_REV


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        # A closed local port stands in for "no network": a real connection refusal.
        ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "the Hub is unreachable"),
    ],
)
def test_tokenizer_hub_repo_not_cached_fails_one_line_naming_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_hub_env: None,
    env: dict[str, str],
    why: str,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--tokenizer", "Org/Missing", "--out", str(tmp_path / "tok")]) == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("tokenizer: 'Org/Missing' at revision 'main' is not in the Hugging Face")
    assert why in line
    assert "offline:qwen" in line
    assert "Traceback" not in err


def test_tokenizer_directory_without_tokenizer_files_fails_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub_env: None
) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"\0")
    assert main(["--tokenizer", str(src), "--out", str(tmp_path / "tok")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"tokenizer: --tokenizer '{src}': directory has no tokenizer files")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("offline:llama", "unknown offline source; known: offline:qwen"),
        ("/no/such/dir", "no such directory and not a Hub repo id"),
        ("not a repo!", "no such directory and not a Hub repo id"),
    ],
)
def test_tokenizer_bad_source_fails_usage(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    expected: str,
    no_hub_env: None,
) -> None:
    assert main(["--tokenizer", source, "--out", str(tmp_path / "tok")]) == 2
    assert expected in capsys.readouterr().err


def test_tokenizer_file_as_source_fails_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub_env: None
) -> None:
    f = tmp_path / "tokenizer.json"
    f.write_text("{}")
    assert main(["--tokenizer", str(f), "--out", str(tmp_path / "tok")]) == 2
    assert "is a file; give the directory" in capsys.readouterr().err


def test_tokenizer_broken_tokenizer_file_fails_load_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub_env: None
) -> None:
    src = tmp_path / "broken"
    src.mkdir()
    (src / "tokenizer.json").write_text("not json")
    assert main(["--tokenizer", str(src), "--out", str(tmp_path / "tok")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("tokenizer: transformers cannot load the")
    assert "Traceback" not in err


def test_tokenizer_out_is_a_file_fails_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub_env: None
) -> None:
    out = tmp_path / "tok"
    out.write_text("a file, not a directory")
    assert main(["--tokenizer", "offline:qwen", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"tokenizer: --out {out}: cannot write")
    assert "Traceback" not in err
