"""End to end: `python -m workflows.baseline run` executes the rendered WorkflowTemplate locally
against the built-in simulator, with the real SeaweedFS S3 server for the upload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.fixtures.s3 import S3Server
from workflows.baseline import main

pytestmark = pytest.mark.s3


def _run(out: Path, s3: S3Server, *extra: str) -> int:
    argv = ["run", "--duration", "10", "--out", str(out), "--bucket", s3.bucket]
    argv += ["--path", f"ci/{out.name}", "--s3-endpoint-url", s3.endpoint_url, *extra]
    return main(argv, dict(os.environ))


def test_run_simulator_s3_produces_records_summary_report_and_verdict(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ok"
    assert _run(out, s3_env) == 0
    stdout = capsys.readouterr().out
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    assert 8 <= records.num_rows <= 12  # 1 QPS for 10 s
    assert set(records.column("status").to_pylist()) == {"ok"}
    summary = json.loads((out / "artifacts" / "aggregate" / "summary" / "summary.json").read_text())
    assert summary["overall"]["requests"]["total"] == records.num_rows
    assert (out / "artifacts" / "report" / "report-html" / "report.html").is_file()
    assert "phase: Succeeded" in stdout
    verdict = next(line for line in stdout.splitlines() if line.startswith("verdict: "))
    assert verdict in ("verdict: pass", "verdict: fail")
    keys = [
        o["Key"]
        for o in s3_env.client().list_objects_v2(Bucket=s3_env.bucket, Prefix="ci/ok/")["Contents"]
    ]
    assert any(k.endswith("report.html") for k in keys), keys
    assert any(k.endswith("records.parquet") for k in keys), keys


def test_run_failing_sla_with_fail_on_breach_exits_3(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(tmp_path / "breach", s3_env, "--sla-ttft-p99-ms", "1", "--fail-on-breach", "true")
    stdout = capsys.readouterr().out
    assert code == 3
    assert "verdict: fail" in stdout
