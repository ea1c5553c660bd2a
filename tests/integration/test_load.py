"""The load step against the real simulator: completeness, token counts, TTFT vs server truth,
failure injection, coalesced chunks, chat sizing, SIGTERM mid-run.

Accuracy is checked against the simulator's ground truth (`GET /debug/truth`), matched by the
X-Request-Id header: server TTFT = first chunk write - request arrival (both time.time_ns());
the client's wall-clock view of a record is `wall_start_ns + <ns since t0>`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from steps.load.__main__ import main
from tests.fixtures.simulator import ROOT, SimulatorHandle
from tests.helpers.load_run import run_load, ttft_errors_ms

StartSimulator = Any


@pytest.mark.parametrize(("rate", "workers"), [(1, 2), (20, 2)])
def test_load_simulator_ten_seconds_every_request_exact_tokens_ttft_near_truth(
    rate: int,
    workers: int,
    simulator: SimulatorHandle,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    simulator.reset_truth()
    code, rows, run_json = run_load(
        tmp_path,
        simulator.base_url,
        qwen_tokenizer_dir,
        "--rate",
        str(rate),
        "--duration",
        "10",
        "--num-workers",
        str(workers),
        "--warmup-requests",
        "2",
        "--run-id",
        f"acc-{rate}",
    )
    assert code == 0, capsys.readouterr().err
    assert len(rows) == rate * 10
    assert {r["status"] for r in rows} == {"ok"}
    assert sorted(r["request_index"] for r in rows) == list(range(rate * 10))
    assert {r["worker"] for r in rows} == set(range(workers))
    assert {(r["prompt_tokens"], r["prompt_tokens_source"]) for r in rows} == {(512, "server")}
    assert {(r["output_tokens"], r["output_tokens_source"]) for r in rows} == {(128, "server")}
    assert all(sum(r["chunk_tokens"]) == 128 for r in rows)
    assert not any(r["output_tokens_mismatch"] for r in rows)
    # Deadlines are t0 + i/rate exactly.
    assert [r["scheduled_ns"] for r in rows] == [round(i * 1e9 / rate) for i in range(rate * 10)]
    truth = [t for t in simulator.truth() if t["request_id"].startswith(f"acc-{rate}-0-")]
    assert len(truth) == rate * 10  # warm-up requests are not stage requests
    errors = ttft_errors_ms(rows, truth, f"acc-{rate}")
    # Client TTFT includes loopback transit both ways and process wake-ups; on a shared,
    # loaded 2-core machine "a few ms" (a wrong start or stamp point is off by >= 10 ms).
    assert np.median(np.abs(errors)) < 5, errors
    assert np.percentile(np.abs(errors), 90) < 20, errors
    # The wall anchor puts client sends just before server arrivals.
    by_id = {t["request_id"]: t for t in truth}
    lags = [
        (
            by_id[f"acc-{rate}-0-{r['request_index']}"]["arrival_wall_ns"]
            - (run_json["wall_start_ns"] + r["sent_ns"])
        )
        / 1e6
        for r in rows
    ]
    assert -2 < np.median(lags) < 5, lags
    assert run_json["stages"][0]["rate"] == rate
    assert run_json["stages"][0]["send_end_ns"] == 10_000_000_000
    assert run_json["client_cpu_s"] > 0


def test_load_failure_injection_error_rows_never_crash(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--tokenizer", str(qwen_tokenizer_dir),
        "--error-rate", "0.2", "--disconnect-rate", "0.2", "--malformed-rate", "0.2",
        "--seed", "3",
    )  # fmt: skip
    code, rows, _ = run_load(
        tmp_path, sim.base_url, qwen_tokenizer_dir,
        "--rate", "25", "--duration", "2", "--num-workers", "1", "--run-id", "faults",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "requests failed" in err
    assert len(rows) == 50
    statuses = {r["status"] for r in rows}
    assert {"ok", "http_error", "protocol_error"} <= statuses
    truth = {t["request_id"]: t for t in sim.truth()}
    for r in rows:
        fault = truth[f"faults-0-{r['request_index']}"]["fault"]
        if fault is None:
            assert r["status"] == "ok"
        elif fault.startswith("error"):
            assert r["status"] == "http_error" and r["http_status"] in (500, 503)
        else:  # disconnect, malformed
            assert r["status"] == "protocol_error", (fault, r["error"])
            assert r["error"]


def test_load_unreachable_and_timeouts_become_rows(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
) -> None:
    code, rows, _ = run_load(
        tmp_path / "closed", "http://127.0.0.1:9", qwen_tokenizer_dir,
        "--rate", "5", "--duration", "1", "--num-workers", "1",
    )  # fmt: skip
    assert code == 1
    assert [r["status"] for r in rows] == ["connect_error"] * 5
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "1", "--slow-first-byte-ms", "1500")
    code, rows, _ = run_load(
        tmp_path / "slow", sim.base_url, qwen_tokenizer_dir,
        "--rate", "4", "--duration", "1", "--num-workers", "1", "--request-timeout", "0.3",
    )  # fmt: skip
    assert code == 1
    assert [r["status"] for r in rows] == ["timeout"] * 4
    assert all("request_timeout 0.3s" in r["error"] for r in rows)
    assert all(0.29e9 < r["end_ns"] - r["sent_ns"] < 0.6e9 for r in rows)


def test_load_coalesced_chunks_counted_from_token_ids(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "2", "--tokens-per-chunk", "4",
        "--tokenizer", str(qwen_tokenizer_dir),
    )  # fmt: skip
    code, rows, run_json = run_load(
        tmp_path, sim.base_url, qwen_tokenizer_dir,
        "--rate", "5", "--duration", "1", "--num-workers", "1",
    )  # fmt: skip
    assert code == 0
    truth = {t["request_id"]: t for t in sim.truth()}
    for r in rows:
        # Coalesced chunks (the first token comes alone after prefill, as in vLLM).
        assert sum(r["chunk_tokens"]) == 128
        assert max(r["chunk_tokens"]) == 4
        served = truth[f"{run_json['run_id']}-0-{r['request_index']}"]
        assert len(r["chunk_offsets_us"]) == len(served["chunk_wall_ns"]) < 40
        assert (r["output_tokens"], r["output_tokens_source"]) == (128, "server")
        assert r["output_tokens_mismatch"] is False


def test_load_chat_prompt_sized_with_template(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--tokenizer", str(qwen_tokenizer_dir)
    )
    code, rows, run_json = run_load(
        tmp_path, sim.base_url, qwen_tokenizer_dir,
        "--rate", "4", "--duration", "1", "--num-workers", "1", "--api-type", "chat",
    )  # fmt: skip
    assert code == 0
    assert run_json["api_type"] == "chat"
    assert {(r["prompt_tokens"], r["prompt_tokens_source"]) for r in rows} == {(512, "server")}
    assert {r["output_tokens"] for r in rows} == {128}


def test_load_sigterm_mid_run_leaves_readable_parquet_with_cancelled(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "20")  # 128 x 20 ms: ~2.6 s each
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "steps.load", "--out", str(out),
            "--tokenizer-dir", str(qwen_tokenizer_dir), "--base-url", sim.base_url,
            "--model-name", "Qwen/Qwen3-8B", "--rate", "10", "--duration", "60",
            "--num-workers", "2", "--input-tokens", "64",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        parts = out / "records.parts"
        # Wait until some requests have finished and been flushed.
        while time.monotonic() < deadline and len(list(parts.glob("*.part.parquet"))) < 2:
            time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = stderr.decode()
    assert proc.returncode == 1, text
    assert "interrupted by SIGTERM" in text
    rows = pq.read_table(out / "records.parquet").to_pylist()
    statuses = [r["status"] for r in rows]
    assert statuses.count("ok") >= 1
    assert statuses.count("cancelled") >= 1
    assert set(statuses) <= {"ok", "cancelled"}
    run = json.loads((out / "run.json").read_text())
    assert run["stages"][0]["end_ns"] < 60e9
    # The unsent share is not a row: run.json says how many are missing, and why.
    assert (run["complete"], run["interrupted"], run["scheduled_requests"]) == (
        False,
        "SIGTERM",
        600,
    )
    assert (run["recorded_requests"], run["missing_requests"]) == (len(rows), 600 - len(rows))
    assert run["incomplete_reasons"] == ["interrupted by SIGTERM"]
    assert f"load: incomplete run: {len(rows)} of 600 scheduled requests recorded" in text
    assert not (out / "records.parts").exists()


def test_load_without_out_writes_to_local_storage_path(
    simulator: SimulatorHandle,
    qwen_tokenizer_dir: Path,
    seed_config_path: Path,
    tmp_path: Path,
) -> None:
    """inference-perf's `storage.local_storage.path` means the results directory here too."""
    config = yaml.safe_load(seed_config_path.read_text())
    config["storage"] = {"local_storage": {"path": str(tmp_path / "results")}}
    config_path = tmp_path / "local.yml"
    config_path.write_text(yaml.safe_dump(config))
    code = main(
        [
            "--config", str(config_path), "--tokenizer-dir", str(qwen_tokenizer_dir),
            "--base-url", simulator.base_url, "--model-name", "Qwen/Qwen3-8B",
            "--input-tokens", "64", "--output-tokens", "8",
            "--rate", "4", "--duration", "1", "--num-workers", "1",
        ]
    )  # fmt: skip
    assert code == 0
    rows = pq.read_table(tmp_path / "results" / "records.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 4
    run_json = json.loads((tmp_path / "results" / "run.json").read_text())
    assert run_json["config"]["storage"]["local_storage"]["path"] == str(tmp_path / "results")
