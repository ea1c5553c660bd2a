"""Flags and knob resolution: precedence over chart values, one-line refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workflows.baseline import main


def test_render_flag_beats_chart_values(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text(
        "benchmark:\n  target:\n    baseUrl: http://from-values:8000\n    modelName: m\n"
    )
    code = main(
        [
            "render",
            "-f",
            str(values),
            "--set",
            "benchmark.target.modelName=n",
            "--base-url",
            "http://from-flag:8000",
        ],
        {},
    )
    assert code == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    values_by_name = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert values_by_name["base_url"] == "http://from-flag:8000"
    assert values_by_name["model_name"] == "n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["render", "--rate", "0"], "parameters: rate: Input should be greater than 0"),
        (["render", "--api-type", "grpc"], "invalid choice: 'grpc'"),
        (["render", "--set", "benchmark.nope=1"], "unknown key 'benchmark.nope'"),
        (["render", "--target-labels", "app"], "--target-labels: 'app' is not key=value"),
        (
            ["render", "--kind", "cron", "--cron", "0 3 * * MON-FRI"],
            "--cron: '0 3 * * MON-FRI' is not a schedule the CronWorkflow CRD of Argo v4.0.5",
        ),
        (
            ["render", "--ca-bundle-configmap", "Corp_CA"],
            "install options: ca_bundle_configmap (--ca-bundle-configmap): String should match",
        ),
    ],
)
def test_render_bad_input_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, {}) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["render", "install", "submit", "run"])
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Knob help comes from field descriptions, some with a percent sign ("errors > 1 %"), which
    # argparse %-formats unless told not to: --help crashed with a ValueError.
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"], {})
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--early-stop" in out
    assert "errors > 1 %" in out
