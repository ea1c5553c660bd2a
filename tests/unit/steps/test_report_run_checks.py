"""The report's run checks through its CLI: the load step's exit code, run completeness, the
default error-rate limit, and a run with no data for a threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.report.__main__ import main
from tests.fixtures.report_runs import BuiltRun, build_run

RUN = "20261118T020000Z-aaaaaa"
COMPLETE = {"complete": True, "scheduled_requests": 40, "recorded_requests": 40}


def _report(run: BuiltRun, out: Path, *extra: str) -> int:
    args = ["--summary", str(run.summary_dir), "--records", str(run.records_dir)]
    return main([*args, "--out", str(out), *extra])


def _verdict(out: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((out / "verdict.json").read_text())
    return doc


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("code", ["0", ""])
def test_load_exit_0_or_unknown_passes(tmp_path: Path, code: str) -> None:
    run = build_run(tmp_path, RUN, run_extra=COMPLETE)
    out = tmp_path / "out"
    assert _report(run, out, "--load-exit-code", code, "--fail-on-breach") == 0
    assert _verdict(out)["verdict"] == "pass"


def test_load_exit_1_on_a_complete_run_passes(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN, run_extra=COMPLETE)
    out = tmp_path / "out"
    assert _report(run, out, "--load-exit-code", "1", "--fail-on-breach") == 0
    checks = _verdict(out)["checks"]
    assert isinstance(checks, list)
    assert {c["name"]: c["passed"] for c in checks} == {"load": True, "complete": True}


def test_load_exit_1_without_completeness_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN)  # an old run.json: no `complete`
    out = tmp_path / "out"
    assert _report(run, out, "--load-exit-code", "1", "--fail-on-breach") == 3
    assert "load: load step exited 1 and the run is incomplete" in _last_line(capsys)
    assert _verdict(out)["verdict"] == "fail"


@pytest.mark.parametrize("code", ["2", "137", "-1", "Failed"])
def test_load_exit_other_fails_and_report_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str
) -> None:
    run = build_run(tmp_path, RUN, run_extra=COMPLETE)
    out = tmp_path / "out"
    assert _report(run, out, "--load-exit-code", code) == 0  # a fail verdict alone: exit 0
    assert _verdict(out)["verdict"] == "fail"
    assert f"| load | FAIL | load step exited {code!r}" in (out / "report.md").read_text()
    assert _report(run, out, "--load-exit-code", code, "--fail-on-breach") == 3
    assert f"report: breach: load: load step exited {code!r}" in _last_line(capsys)


def test_incomplete_run_fails_even_within_sla(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incomplete = {
        "complete": False,
        "scheduled_requests": 150,
        "recorded_requests": 40,
        "interrupted": "SIGTERM",
        "incomplete_reasons": ["interrupted by SIGTERM"],
    }
    run = build_run(tmp_path, RUN, run_extra=incomplete)
    out = tmp_path / "out"
    assert _report(run, out, "--load-exit-code", "0", "--fail-on-breach") == 3
    line = _last_line(capsys)
    assert "complete: recorded 40 of 150 scheduled requests (interrupted by SIGTERM)" in line
    report = (out / "report.md").read_text()
    assert "Verdict: FAIL" in report
    assert (
        "| complete | FAIL | recorded 40 of 150 scheduled requests (interrupted by SIGTERM) |"
        in report
    )


def test_error_rate_has_a_default_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = build_run(tmp_path, RUN, failed=2, run_extra=COMPLETE)  # 2 of 42 failed
    out = tmp_path / "out"
    assert _report(run, out, "--fail-on-breach") == 3
    assert "error_rate 0.048 > 0.010" in _last_line(capsys)


@pytest.mark.parametrize("value", ["", "off"])
def test_error_rate_empty_or_off_means_no_limit(tmp_path: Path, value: str) -> None:
    run = build_run(tmp_path, RUN, failed=2, run_extra=COMPLETE)
    out = tmp_path / "out"
    assert _report(run, out, "--sla-error-rate", value, "--fail-on-breach") == 0


def test_error_rate_from_sla_file_beats_the_default(tmp_path: Path) -> None:
    run = build_run(tmp_path, RUN, failed=2, run_extra=COMPLETE)
    sla = tmp_path / "sla.yml"
    sla.write_text("error_rate: 0.05\n")
    assert _report(run, tmp_path / "out", "--sla", str(sla), "--fail-on-breach") == 0


def test_threshold_without_data_says_no_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN, requests=0, failed=1)
    out = tmp_path / "out"
    args = ("--sla-ttft-p99-ms", "150", "--sla-error-rate", "off", "--fail-on-breach")
    assert _report(run, out, *args) == 3
    assert "ttft_p99_ms no data > 150.000" in _last_line(capsys)
