"""The report CLI in-process, without S3: verdicts, exit codes, files, outputs, local history."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.report.__main__ import main
from tests.fixtures.report_runs import MODEL, build_run, run_id_of_night, store_in_history

RUN_1 = "20261118T020000Z-aaaaaa"
RUN_2 = "20261119T020000Z-bbbbbb"
PNGS = (
    "ttft_cdf.png",
    "itl_cdf.png",
    "e2e_cdf.png",
    "latency_over_time.png",
    "schedule_delay_over_time.png",
    "throughput_over_time.png",
)


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The step's own error line (the aggregate helper logs to stderr before it)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def _args(run_dir: Path, records: Path, out: Path, *extra: str) -> list[str]:
    return ["--summary", str(run_dir), "--records", str(records), "--out", str(out), *extra]


def test_report_main_within_sla_exits_0_and_writes_bundle(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN_1)
    out, outputs = tmp_path / "out", tmp_path / "outputs"
    args = _args(run.summary_dir, run.records_dir, out, "--outputs-dir", str(outputs))
    assert main([*args, "--sla-ttft-p99-ms", "150", "--fail-on-breach"]) == 0
    for name in ("report.md", "report.html", "verdict.json", "config.json", "run.json"):
        assert (out / name).is_file(), name
    for name in ("records.parquet", "summary.json", "summary.parquet"):
        assert (out / name).is_file(), name
    assert (out / "summary_lifecycle_metrics.json").is_file()
    for png in PNGS:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    values = {p.name: p.read_text() for p in outputs.iterdir()}
    assert values["verdict"] == "pass"
    assert values["ttft_p50_ms"] == "100.000"
    assert values["itl_p99_ms"] == "10.000"
    assert values["error_rate"] == "0.000000"
    assert values["report_uri"] == str((out / "report.html").resolve())
    # One rate: no capacity reading, its output parameters empty, no section.
    assert [values[n] for n in ("knee_rate", "max_rate_within_sla", "recommended_rate")] == [""] * 3
    assert "## Capacity" not in (out / "report.md").read_text()


def test_report_main_breach_with_fail_on_breach_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1, ttft_ms=200.0)
    args = _args(run.summary_dir, run.records_dir, tmp_path / "out", "--sla-ttft-p99-ms", "150")
    assert main([*args, "--fail-on-breach"]) == 3
    err = _last_line(capsys)
    assert err.startswith("report: breach: ttft_p99_ms 200.000 > 150.000")
    assert main(args) == 0  # a breach alone does not fail the step
    assert '"verdict": "fail"' in (tmp_path / "out" / "verdict.json").read_text()


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--fail-on-breach", "true"], 3),
        (["--fail-on-breach", "TRUE"], 3),
        (["--fail-on-breach", "false"], 0),
        (["--fail-on-breach", ""], 0),
        (["--fail-on-breach", "--no-fail-on-breach"], 0),
        (["--fail-on-breach", "false", "--fail-on-breach"], 3),
    ],
)
def test_report_main_fail_on_breach_takes_the_argo_word(
    tmp_path: Path, flags: list[str], code: int
) -> None:
    run = build_run(tmp_path, RUN_1, ttft_ms=200.0)
    args = _args(run.summary_dir, run.records_dir, tmp_path / "out", "--sla-ttft-p99-ms", "150")
    assert main([*args, *flags]) == code


def test_report_main_sla_file_unknown_key_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    sla = tmp_path / "sla.yml"
    sla.write_text("ttft_p99_ms: 500\nttft_p42_ms: 1\n")
    code = main(_args(run.summary_dir, run.records_dir, tmp_path / "out", "--sla", str(sla)))
    assert code == 2
    assert _last_line(capsys) == (
        f"report: --sla {sla}: unknown SLA key 'ttft_p42_ms' (known: ttft_p50_ms, ttft_p99_ms, "
        "itl_p50_ms, itl_p99_ms, e2e_p99_ms, error_rate, schedule_delay_p99_ms, goodput_rps, "
        "slo_attainment)"
    )


def test_report_main_sla_file_and_flag_flag_wins(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN_1, failed=2)
    sla = tmp_path / "sla.yml"
    sla.write_text("error_rate: 0.01\nschedule_delay_p99_ms: null\n")
    args = _args(run.summary_dir, run.records_dir, tmp_path / "out", "--sla", str(sla))
    assert main([*args, "--fail-on-breach"]) == 3
    assert main([*args, "--sla-error-rate", "0.5", "--fail-on-breach"]) == 0
    verdict = (tmp_path / "out" / "verdict.json").read_text()
    assert "schedule_delay_p99_ms" not in verdict


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--sla-itl-p99-ms", "fast", "report: --sla-itl-p99-ms: expected a number, '' or 'off'"),
        ("--regression-tolerance", "ten", "report: --regression-tolerance: expected a number"),
        ("--bucket", "s3://bucket", "report: --bucket: bucket 's3://bucket': S3 bucket"),
        ("--fail-on-breach", "yes", "report: --fail-on-breach: expected true or false, got 'yes'"),
    ],
)
def test_report_main_bad_flag_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    run = build_run(tmp_path, RUN_1)
    assert main([*_args(run.summary_dir, run.records_dir, tmp_path / "out"), flag, value]) == 2
    assert _last_line(capsys).startswith(message)


def test_report_main_missing_summary_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    code = main(_args(tmp_path / "nowhere", run.records_dir, tmp_path / "out"))
    assert code == 2
    err = _last_line(capsys)
    assert err.startswith(f"report: --summary: {tmp_path / 'nowhere'} has no summary.json")


def test_report_main_empty_flags_mean_unset(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN_1)
    empty = [
        "--bucket",
        "",
        "--path",
        "p",
        "--sla",
        "",
        "--sla-ttft-p99-ms",
        "",
        "--outputs-dir",
        "",
    ]
    args = _args(run.summary_dir, run.records_dir, tmp_path / "out", *empty)
    assert main([*args, "--regression-tolerance", "", "--fail-on-breach"]) == 0


def test_report_main_html_is_self_contained(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN_1)
    assert main(_args(run.summary_dir, run.records_dir, tmp_path / "out")) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(PNGS)
    assert "http://" not in page.replace(run.summary_dir.as_posix(), "").replace(
        "http://vllm.models.svc:8000", ""
    )
    assert "<script" not in page
    markdown = (tmp_path / "out" / "report.md").read_text()
    for png in PNGS:
        assert f"]({png})" in markdown


def test_report_main_local_history_detects_regression_and_improvement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history"
    first = build_run(tmp_path, RUN_1, ttft_ms=100.0, itl_ms=10.0)
    out_1 = history / "baseline" / MODEL / RUN_1
    hist = ["--history-dir", str(history)]
    assert main([*_args(first.summary_dir, first.records_dir, out_1), *hist]) == 0
    assert "nothing to compare with" in (out_1 / "report.md").read_text()

    second = build_run(tmp_path, RUN_2, ttft_ms=130.0, itl_ms=8.0)
    out_2 = tmp_path / "out2"
    code = main([*_args(second.summary_dir, second.records_dir, out_2), *hist, "--fail-on-breach"])
    assert code == 3
    assert "ttft_p50_ms regressed: +30.0% vs the mean of 1 baseline run" in capsys.readouterr().err
    report = (out_2 / "report.md").read_text()
    assert "Judged against 1 earlier run of the last 10" in report
    assert f"| {RUN_1} | 100.000 |" in report  # the compared run, in the trend
    assert (
        "| ttft_p50_ms | 130.000 | 100.000 | +30.0% | +30.0% .. +30.0% | 5% | REGRESSION |"
        in report
    )
    assert (
        "| itl_p50_ms | 8.000 | 10.000 | -20.0% | -20.0% .. -20.0% | 5% | improvement |" in report
    )
    # One baseline run: no run-to-run noise known, only a change past 3 x tolerance counts.
    assert "| ttft_p99_ms | 130.000 | 100.000 | +30.0% |" in report
    assert "ttft_p99_ms: inconclusive - " in report


def test_report_main_secrets_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf_token = "hf_" + "Q" * 34
    monkeypatch.setenv("HF_TOKEN", hf_token)
    monkeypatch.setenv("MY_API_KEY", "plain-secret-value-1234")
    extra = {
        "server": {
            "type": "vllm",
            "api_key_env": "MY_API_KEY",
            "api_key": "plain-secret-value-1234",
        },
        "note": f"token {hf_token} and AKIAABCDEFGHIJKLMNOP",
    }
    run = build_run(tmp_path, RUN_1, config_extra=extra)
    out = tmp_path / "out"
    assert main(_args(run.summary_dir, run.records_dir, out)) == 0
    for path in out.iterdir():
        data = path.read_bytes()
        for secret in (hf_token, "plain-secret-value-1234", "AKIAABCDEFGHIJKLMNOP"):
            assert secret.encode() not in data, (path.name, secret)
    assert '"api_key_env": "MY_API_KEY"' in (out / "config.json").read_text()


def test_report_main_report_file_unwritable_exits_1_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    out = tmp_path / "out"
    (out / "report.md").mkdir(parents=True)  # writing the file itself will fail
    assert main(_args(run.summary_dir, run.records_dir, out)) == 1
    err = _last_line(capsys)
    assert err == f"report: cannot write the local results ({out / 'report.md'}: Is a directory)"


def test_report_main_trend_and_reasons_rendered_in_markdown_and_html(tmp_path: Path) -> None:
    history = tmp_path / "history"
    nights = [run_id_of_night(n) for n in range(5)]
    for night, ttft in zip(nights, (100.0, 101.0, 99.0, 100.0, 130.0), strict=True):
        store_in_history(build_run(tmp_path, night, ttft_ms=ttft), history)
    now = build_run(tmp_path, run_id_of_night(5), ttft_ms=131.0)
    out = tmp_path / "out"
    assert main([*_args(now.summary_dir, now.records_dir, out), "--history-dir", str(history)]) == 0
    report = (out / "report.md").read_text()
    assert "## Trend" in report and "![Key metrics over the run history](trend.png)" in report
    assert f"| {run_id_of_night(5)} <- this run | 131.000 |" in report
    assert f"| {nights[4]} | 130.000 |" in report and "| noise band |" in report
    # 130 ms one night before: the step has not lasted 3 runs, so that night widens the band
    # of the 5 baseline runs and tonight's +23.6 % is inside it: inconclusive, which passes.
    assert "Verdict: PASS" in report
    assert "ttft_p50_ms: inconclusive - +23.6% vs the mean of 5 baseline runs" in report
    assert "itl_p50_ms: unchanged - +0.0% vs the mean of 5 baseline runs" in report
    html = (out / "report.html").read_text()
    assert "<h2>Trend</h2>" in html and 'alt="Key metrics over the run history"' in html
    assert html.count("data:image/png;base64,") == len(PNGS) + 1
    assert "ttft_p50_ms: inconclusive - +23.6%" in html


def test_report_main_bad_history_flags_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    for flags, line in (
        (["--history-window", "0"], "report: --history-window: expected a whole number >= 1, "
         "got '0'"),
        (["--regression-tolerance-ttft-p99-ms", "-1"], "report: --regression-tolerance-ttft-p99-ms:"
         " must be >= 0, got '-1'"),
        (["--capacity-headroom", "1"], "report: --capacity-headroom: must be >= 0 and < 1, "
         "got '1'"),
        (["--capacity-headroom", "a lot"], "report: --capacity-headroom: expected a share like "
         "0.25, got 'a lot'"),
    ):  # fmt: skip
        assert main([*_args(run.summary_dir, run.records_dir, tmp_path / "o"), *flags]) == 2
        assert _last_line(capsys) == line
