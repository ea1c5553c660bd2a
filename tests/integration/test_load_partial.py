"""Partial runs never pass and lose nothing silently (issue 10 items 2 and 8), with real faults:
a worker killed with SIGKILL, the main process killed, a file size limit (EFBIG, what a full
disk looks like to one file) on the load step's process tree. Each run then goes through the
real aggregate and report steps, whose verdict must be FAIL."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.records import PARTS_DIR
from steps.report.__main__ import main as report_main
from tests.fakes.hostile import HostileServer, drip
from tests.fixtures.simulator import ROOT

StartSimulator = Any


def _start_load(
    out: Path,
    base_url: str,
    tokenizer_dir: Path,
    *flags: str,
    limit_file_size: int = 0,
    limit_open_files: int = 0,
) -> subprocess.Popen[bytes]:
    def limit() -> None:  # runs in the child; spawned workers inherit the limits
        if limit_file_size:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))
        if limit_open_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_open_files, limit_open_files))

    return subprocess.Popen(
        [
            sys.executable, "-m", "steps.load", "--out", str(out),
            "--tokenizer-dir", str(tokenizer_dir), "--base-url", base_url,
            "--model-name", "Qwen/Qwen3-8B", "--input-tokens", "64", *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=limit if limit_file_size or limit_open_files else None,
    )  # fmt: skip


def _wait_for_parts(out: Path, proc: subprocess.Popen[bytes], count: int = 2) -> None:
    deadline = time.monotonic() + 90
    while len(list((out / PARTS_DIR).glob("*.part.parquet"))) < count:
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "no part files written"
        time.sleep(0.2)


def _workers(parent: int) -> list[int]:
    """Pids of the load step's worker processes (spawned children of `parent`)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def _two_workers_with_parts(
    simulator_factory: StartSimulator, tokenizer_dir: Path, out: Path, duration_s: int
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A 10 req/s run with 2 workers against the simulator, once parts are on disk: the load
    process and its two workers' pids, for a test to kill one of them."""
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "2")
    proc = _start_load(
        out, sim.base_url, tokenizer_dir,
        "--rate", "10", "--duration", str(duration_s), "--num-workers", "2",
        "--output-tokens", "32", "--server-metrics-interval", "0",  # only workers are children
    )  # fmt: skip
    _wait_for_parts(out, proc)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    return proc, workers


def _finish(proc: subprocess.Popen[bytes]) -> str:
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return stderr.decode()


def _verdict_fails(tmp_path: Path, records: Path, load_exit_code: str) -> str:
    """Aggregate and report the run; the report must exit 3 with --fail-on-breach."""
    summary = tmp_path / "summary"
    assert aggregate_main(["--records", str(records), "--out", str(summary)]) == 0
    report = tmp_path / "report"
    args = ["--summary", str(summary), "--records", str(records), "--out", str(report)]
    args += ["--load-exit-code", load_exit_code, "--sla-error-rate", "off", "--fail-on-breach"]
    assert report_main(args) == 3
    return (report / "report.md").read_text()


def test_worker_killed_mid_run_is_counted_missing_and_fails_the_verdict(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "load"
    proc, workers = _two_workers_with_parts(simulator_factory, qwen_tokenizer_dir, out, 8)
    os.kill(workers[0], signal.SIGKILL)
    stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    run = json.loads((out / "run.json").read_text())
    rows = pq.read_metadata(out / "records.parquet").num_rows
    assert run["complete"] is False and len(run["lost_workers"]) == 1
    assert run["scheduled_requests"] == 80
    assert run["recorded_requests"] == rows < 80
    assert run["missing_requests"] == 80 - rows
    assert last.startswith(f"load: incomplete run: {rows} of 80 scheduled requests recorded")
    assert "exited (code -9) without finishing" in last
    report = _verdict_fails(tmp_path, out, "1")
    assert f"| complete | FAIL | recorded {rows} of 80 scheduled requests" in report


def test_main_process_killed_parts_are_recovered_by_the_merge_command(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "load"
    proc, workers = _two_workers_with_parts(simulator_factory, qwen_tokenizer_dir, out, 30)
    proc.kill()
    _finish(proc)
    deadline = time.monotonic() + 60  # workers see the pipe close, stop and flush
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "workers did not stop after the main process died"
        time.sleep(0.2)
    assert not (out / "records.parquet").exists()
    assert aggregate_main(["--records", str(out), "--out", str(tmp_path / "x")]) == 2

    assert load_main(["merge", "--out", str(out)]) == 0
    rows = pq.read_metadata(out / "records.parquet").num_rows
    run = json.loads((out / "run.json").read_text())
    assert 0 < rows < 300
    assert (run["complete"], run["scheduled_requests"]) == (False, 300)
    assert (run["recorded_requests"], run["missing_requests"]) == (rows, 300 - rows)
    assert "main process was lost" in run["incomplete_reasons"][0]
    assert all(isinstance(stage["end_ns"], int) for stage in run["stages"])
    assert not (out / PARTS_DIR).exists()
    report = _verdict_fails(tmp_path, out, "Failed")
    assert "| load | FAIL | load step exited 'Failed'" in report


@pytest.mark.parametrize("limit", [24_000])
def test_records_file_too_large_keeps_parts_and_run_json_one_line(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path, limit: int
) -> None:
    """Parts (about a second of records each) fit under the file size limit, the merged
    records.parquet does not: the step ends with one line, keeps every part, writes run.json,
    and the merge command finishes the job once the limit is gone."""
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "1")
    out = tmp_path / "load"
    proc = _start_load(
        out, sim.base_url, qwen_tokenizer_dir,
        "--rate", "10", "--duration", "10", "--num-workers", "1", "--output-tokens", "128",
        limit_file_size=limit,
    )  # fmt: skip
    stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"load: cannot write {out / 'records.parquet'} (")
    assert "File too large" in last and "the 100 records stay in" in last
    assert f"`python -m steps.load merge --out {out}`" in last
    assert not (out / "records.parquet").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False and run["recorded_requests"] == 100
    assert "File too large" in run["incomplete_reasons"][0]

    assert load_main(["merge", "--out", str(out)]) == 0
    assert pq.read_metadata(out / "records.parquet").num_rows == 100
    _verdict_fails(tmp_path, out, "1")


def test_too_many_open_files_holds_records_until_they_can_be_written(
    hostile_server: Callable[[Any], HostileServer], qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    """The issue's repro: few file descriptors, a server dripping a byte a second, 20 requests a
    second timing out after 1 s. Sockets take the descriptors a part file needs (EMFILE); the
    records wait in the worker and are written once sockets close: all 100 are rows."""
    server = hostile_server([drip(b"HTTP/1.1 200 OK\r\n" * 100, 1.0)])
    out = tmp_path / "load"
    proc = _start_load(
        out, server.url, qwen_tokenizer_dir,
        "--rate", "20", "--duration", "5", "--num-workers", "1", "--request-timeout", "1",
        "--output-tokens", "4", "--warmup-requests", "0",
        limit_open_files=28,
    )  # fmt: skip
    stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "Too many open files" in stderr, "the limit did not provoke EMFILE on a part write"
    assert "Traceback" not in stderr
    run = json.loads((out / "run.json").read_text())
    assert pq.read_metadata(out / "records.parquet").num_rows == 100
    assert (run["complete"], run["recorded_requests"], run["missing_requests"]) == (True, 100, 0)
    assert stderr.strip().splitlines()[-1] == "load: 100 of 100 requests failed"
