"""The load step spread over two pods (here: processes) against the real simulator, through the
real coordinator: one run id, one t0, one stage timeline, request indexes 0..n-1 split i mod 2,
and aggregate merging the shards; a pod that never comes fails the run naming it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from steps.aggregate.__main__ import main as aggregate_main
from steps.report.__main__ import main as report_main
from tests.fixtures.simulator import ROOT, SimulatorHandle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _coordinator(port: int, pods: int, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "steps.load", "coordinate", "--load-pods", str(pods),
         "--port", str(port), "--start-lead-s", "0.5", *flags],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _pod(
    out: Path, index: int, pods: int, port: int, base_url: str, tok: Path, *flags: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "steps.load", "--out", str(out), "--tokenizer-dir", str(tok),
         "--base-url", base_url, "--model-name", "Qwen/Qwen3-8B", "--input-tokens", "64",
         "--output-tokens", "8", "--num-workers", "1", "--load-pods", str(pods),
         "--pod-index", str(index), "--coordinator", f"127.0.0.1:{port}", *flags],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_pods_send_one_schedule_and_merge_like_one_pod(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    coordinator = _coordinator(port, 2, "--run-id", "fanout-run")
    flags = ("--rate", "20", "--duration", "2", "--warmup-requests", "2")
    pods = [
        _pod(tmp_path / f"pod{i}", i, 2, port, simulator.base_url, qwen_tokenizer_dir, *flags)
        for i in (0, 1)
    ]
    errors = [p.communicate(timeout=120)[1] for p in pods]
    assert [p.returncode for p in pods] == [0, 0], errors
    coordinator_err = coordinator.communicate(timeout=30)[1]
    assert coordinator.returncode == 0, coordinator_err
    runs = [json.loads((tmp_path / f"pod{i}" / "run.json").read_text()) for i in (0, 1)]
    rows = [pq.read_table(tmp_path / f"pod{i}" / "records.parquet").to_pylist() for i in (0, 1)]
    assert {r["run_id"] for r in runs} == {"fanout-run"}
    assert [(r["load_pods"], r["pod_index"]) for r in runs] == [(2, 0), (2, 1)]
    # One t0 on the coordinator's clock, one stage timeline.
    assert runs[0]["wall_start_ns"] == runs[1]["wall_start_ns"]
    assert runs[0]["stages"] == runs[1]["stages"]
    assert all(abs(r["clock_offset_ns"]) < 5_000_000 and r["clock_rtt_ns"] > 0 for r in runs)
    for i in (0, 1):
        assert sorted(r["request_index"] for r in rows[i]) == list(range(i, 40, 2))
        assert {r["wall_start_ns"] for r in rows[i]} == {runs[0]["wall_start_ns"]}
    merged = rows[0] + rows[1]
    assert sorted(r["request_index"] for r in merged) == list(range(40))
    assert [r["scheduled_ns"] for r in sorted(merged, key=lambda r: r["request_index"])] == [
        i * 50_000_000 for i in range(40)
    ]
    assert {r["status"] for r in merged} == {"ok"}
    # The server saw one schedule: every request once, under the one run id.
    truth = [t for t in simulator.truth() if t["request_id"].startswith("fanout-run-0-")]
    assert len(truth) == 40
    out = tmp_path / "agg"
    assert aggregate_main(["--records", str(tmp_path / "pod0"), str(tmp_path / "pod1"),
                           "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["shards"] == 2
    assert summary["overall"]["requests"]["total"] == 40
    assert summary["run"]["scheduled_requests"] == 40
    assert summary["run"]["complete"] is True
    assert summary["stages"][0]["requested_rate"] == 20
    pods_summary = summary["run"]["pods"]
    assert [p["pod_index"] for p in pods_summary] == [0, 1]
    assert [p["requests"] for p in pods_summary] == [20, 20]
    assert summary["run"]["client_cpu_s"] == round(sum(r["client_cpu_s"] for r in runs), 4)
    assert all(p["schedule_delay_p99_ms"] is not None for p in pods_summary)
    assert 0 <= summary["run"]["start_spread_ms"] < 50
    report = tmp_path / "report"
    shards = [str(tmp_path / "pod0"), str(tmp_path / "pod1")]
    history = ["--history-dir", str(tmp_path / "history")]
    assert report_main(["--summary", str(out), "--records", *shards, "--out", str(report),
                        *history]) == 0  # fmt: skip
    markdown = (report / "report.md").read_text()
    assert "## Load pods" in markdown
    assert "| 1 | 20 |" in markdown


def test_a_pod_that_never_comes_fails_the_run_naming_it(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    coordinator = _coordinator(port, 2)
    pod = _pod(
        tmp_path / "pod0", 0, 2, port, simulator.base_url, qwen_tokenizer_dir,
        "--rate", "5", "--duration", "1", "--start-timeout", "3",
    )  # fmt: skip
    err = pod.communicate(timeout=120)[1]
    assert pod.returncode == 1, err
    line = "load pod 0: coordinator: load pod(s) 1 did not reach 'ready' within 3 s"
    assert line in err
    assert "Traceback" not in err
    coordinator_err = coordinator.communicate(timeout=30)[1]
    assert coordinator.returncode == 1
    assert "load pod(s) 1 did not reach 'ready' within 3 s" in coordinator_err
    assert not (tmp_path / "pod0" / "records.parquet").exists()


def test_a_pod_lost_mid_run_leaves_the_other_pods_records_and_names_it(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    coordinator = _coordinator(port, 2)
    flags = ("--rate", "10", "--duration", "4")
    pods = [
        _pod(tmp_path / f"pod{i}", i, 2, port, simulator.base_url, qwen_tokenizer_dir, *flags)
        for i in (0, 1)
    ]
    deadline = time.monotonic() + 90
    while not (tmp_path / "pod1" / "run.json").exists():  # written at t0
        assert time.monotonic() < deadline and pods[1].poll() is None
        time.sleep(0.05)
    time.sleep(1.0)
    pods[1].kill()
    pods[1].communicate(timeout=30)
    err = pods[0].communicate(timeout=120)[1]
    assert pods[0].returncode == 1, err
    assert "load pod 1 disconnected before it finished" in err
    assert "Traceback" not in err
    run_json = json.loads((tmp_path / "pod0" / "run.json").read_text())
    assert run_json["complete"] is False
    assert any("load pod 1 disconnected" in r for r in run_json["incomplete_reasons"])
    rows = pq.read_table(tmp_path / "pod0" / "records.parquet").to_pylist()
    assert sorted(r["request_index"] for r in rows) == list(range(0, 40, 2))
    coordinator_err = coordinator.communicate(timeout=30)[1]
    assert coordinator.returncode == 1
    assert "load pod 1 disconnected before it finished" in coordinator_err
