"""report: hostile input files and names are one line, exit 2, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.report.__main__ import main
from tests.fixtures.report_runs import build_run

RUN_1 = "20261118T020000Z-aaaaaa"


def _argv(run: object, out: Path, *extra: str) -> list[str]:
    return ["--summary", str(run.summary_dir), "--records", str(run.records_dir),  # type: ignore[attr-defined]
            "--out", str(out), *extra]  # fmt: skip


def test_report_binary_sla_file_is_one_usage_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    capsys.readouterr()
    sla = tmp_path / "sla.yaml"
    sla.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    assert main(_argv(run, tmp_path / "out", "--sla", str(sla))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"report: --sla {sla}: not a UTF-8 text file"), err
    assert "\n" not in err


@pytest.mark.parametrize(
    ("key", "value"),
    [("model", "../../etc"), ("model", "x/./y"), ("model", "."), ("scenario", "../..")],
)
def test_report_path_trick_in_summary_names_is_refused_before_history_lookup(
    tmp_path: Path, key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    summary_json = run.summary_dir / "summary.json"
    summary = json.loads(summary_json.read_text())
    summary["run"][key] = value
    summary_json.write_text(json.dumps(summary))
    history = tmp_path / "history"
    (history / "baseline").mkdir(parents=True)
    capsys.readouterr()
    assert main(_argv(run, tmp_path / "out", "--history-dir", str(history))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"report: summary.json run.{key}: "), err
    assert not (tmp_path / "out" / "report.html").exists()


def test_report_bad_run_id_is_named_a_run_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, RUN_1)
    summary_json = run.summary_dir / "summary.json"
    summary = json.loads(summary_json.read_text())
    summary["run"]["run_id"] = "../x"
    summary_json.write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(_argv(run, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("report: summary.json run.run_id: run id '../x': use letters"), err
