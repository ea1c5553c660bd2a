"""steps.load CLI: bad input exits 2 with one stderr line and no traceback; a config's storage
block and --out agree the way inference-perf's would (one short run against the simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.load.__main__ import _parser, _settings, main
from tests.fixtures.simulator import SimulatorHandle


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--rate", "fast"], "invalid float value: 'fast'"),
        (["--rate", "-1"], "load.stages[0].rate"),
        (["--load-type", "bursty"], "--load-type"),
        (["--scenario", "nosuch"], "unknown --scenario 'nosuch'"),
        (["--tokenizer-dir", "/nonexistent/tok"], "--tokenizer-dir /nonexistent/tok"),
        (["--run-id", "bad id"], "--run-id: run id 'bad id'"),
        # the report step could not store a longer one: refused at start, before the config
        (["--run-id", "r" * 65, "--config", "/nonexistent.yml"], "--run-id: run id 'rrr"),
        (["--config", "/nonexistent.yml"], "--config /nonexistent.yml: cannot read"),
        (["--scenario", "../.."], "--scenario: scenario '../..': use letters"),
        (
            ["--scenario", "../../tests/data/seed_baseline_config"],  # a YAML file outside
            "--scenario: scenario '../../tests/data/seed_baseline_config': use letters",
        ),
        (["--config", "/tmp/my run.yml"], "--config /tmp/my run.yml (its file name names the"),
        (["--rate", "inf"], "load.stages[0].rate: Input should be a finite number"),
        (["--duration", "1e12"], "load.stages[0].duration: Input should be less than or equal"),
        (["--input-tokens", "10000000"], "data.input_distribution.max: Input should be less"),
        (["--model-name", "../../etc"], "server.model_name: model name '../../etc' must be"),
        (["--base-url", "http://h:8000/?key=SECRET-9"], "server.base_url: base_url must not"),
        (["--stages", "5x180,10"], "--stages '5x180,10': stage 2 '10' is not RATExSECONDS"),
        (["--stages", "5x180", "--rate", "2"], "--stages and --rate/--duration: give the"),
        (["--input-tokens", "5", "--input-mean", "7"], "--input-tokens (an exact length) and"),
        (
            ["--output-min", "600", "--scenario", "saturation"],
            "data.output_distribution: min (600) must be <= max (512)",
        ),
        (["--input-std-dev", "x"], "--input-std-dev: invalid float value: 'x'"),
        (["--early-stop-ttft-p99-ms", "5"], "--early-stop-ttft-p99-ms: needs early stop on"),
        (["--early-stop", "off", "--early-stop-ttft-p99-ms", "5"], "early stop is off"),
        (["--early-stop", "maybe"], "--early-stop: invalid choice: 'maybe'"),
        (["--early-stop", "on", "--early-stop-ttft-p99-ms", "0"], "ttft_p99_ms: Input should be"),
        (["--load-pods", "0"], "--load-pods 0: must be at least 1"),
        (["--load-pods", "2", "--pod-index", "2"], "--pod-index 2: must be in 0..1"),
        (["--load-pods", "2"], "--load-pods 2 needs --coordinator HOST[:PORT]"),
        (["--load-pods", "2", "--coordinator", "h", "--run-id", "r1"], "the coordinator names"),
        (["--load-pods", "2", "--coordinator", "h:port"], "--coordinator 'h:port': expected"),
    ],
)
def test_main_bad_flag_exit_2_one_line(
    extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and "SECRET-9" not in err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--load-pods", "1"], "--load-pods 1: a coordinator needs at least 2"),
        (["--load-pods", "2", "--run-id", "bad id"], "--run-id: run id 'bad id'"),
        (["--load-pods", "2", "--port", "70000"], "--port 70000: not a TCP port"),
        (["--load-pods", "2", "--start-lead-s", "0"], "--start-lead-s and --deadline-s"),
    ],
)
def test_coordinate_bad_flag_exit_2_one_line(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["coordinate", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_main_api_key_env_unset_exit_2_names_variable(
    tmp_path: Path,
    qwen_tokenizer_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOADTEST_NO_SUCH_KEY", raising=False)
    code = main(
        [
            "--out",
            str(tmp_path / "out"),
            "--tokenizer-dir",
            str(qwen_tokenizer_dir),
            "--api-key-env",
            "LOADTEST_NO_SUCH_KEY",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    # The whole line (stricter than naming the variable): steps.cli.secret_from_env's wording.
    assert (
        err
        == "load: server.api_key_env LOADTEST_NO_SUCH_KEY: that environment variable is not set\n"
    )


def test_main_empty_string_flags_mean_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Argo passes "" for optional parameters; only the missing tokenizer dir may fail here.
    code = main(["--out", str(tmp_path), "--rate", "", "--seed", "", "--tokenizer-dir", "/x/y"])
    assert code == 2
    assert "--tokenizer-dir /x/y" in capsys.readouterr().err


def test_main_base_url_bad_port_exit_2_names_field(
    tmp_path: Path, qwen_tokenizer_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--out",
            str(tmp_path / "out"),
            "--tokenizer-dir",
            str(qwen_tokenizer_dir),
            "--base-url",
            "http://127.0.0.1:notaport",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "server.base_url" in err and "notaport" in err
    assert "Traceback" not in err


def test_main_parts_left_by_interrupted_run_exit_2_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = tmp_path / "out" / "records.parts"
    parts.mkdir(parents=True)
    (parts / "w000-000001.part.parquet").write_bytes(b"")
    code = main(["--out", str(tmp_path / "out"), "--tokenizer-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "w000-000001.part.parquet from an interrupted run" in err
    assert (parts / "w000-000001.part.parquet").exists()


def test_main_api_key_with_newline_exit_2_names_env_field_not_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADTEST_KEY", "sk-hunter2\n")  # as read from a mounted secret file
    base = ["--out", str(tmp_path / "out"), "--tokenizer-dir", str(tmp_path)]
    code = main([*base, "--api-key-env", "LOADTEST_KEY", "--model-name", "m"])
    err = capsys.readouterr().err
    assert code == 2
    assert "server.api_key_env" in err
    assert "hunter2" not in err


def test_main_base_url_with_credentials_exit_2_password_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--out", str(tmp_path / "out"), "--tokenizer-dir", str(tmp_path)]
    code = main([*base, "--base-url", "http://bench:hunter2@127.0.0.1:8000", "--model-name", "m"])
    err = capsys.readouterr().err
    assert code == 2
    assert "server.base_url" in err and "credentials" in err
    assert "hunter2" not in err


def test_main_config_with_s3_storage_exit_2_one_line(
    tmp_path: Path, seed_config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The guide's ConfigMap: inference-perf would upload to its bucket; the load step cannot.
    code = main(["--out", str(tmp_path / "out"), "--config", str(seed_config_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "storage.simple_storage_service: the load step writes local files only" in err
    assert "bucket and path parameters" in err
    assert not (tmp_path / "out").exists()


def test_main_without_out_or_local_storage_exit_2_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--tokenizer-dir", "/x/y"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no output directory: pass --out DIR or set storage.local_storage.path" in err
    assert "Traceback" not in err


def _config_with_storage(seed_config_path: Path, tmp_path: Path, storage: dict[str, Any]) -> Path:
    """The seed config with its `storage` block replaced, written to tmp_path/local.yml."""
    config = yaml.safe_load(seed_config_path.read_text())
    config["storage"] = storage
    path = tmp_path / "local.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_main_local_storage_without_path_and_out_exit_0_writes_to_out(
    simulator: SimulatorHandle,
    qwen_tokenizer_dir: Path,
    seed_config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where inference-perf's default "reports" would land
    # `local_storage: {}` names no directory: --out decides (the flags rebuild the config, which
    # once made inference-perf's default "reports" look written and refused every --out).
    config = _config_with_storage(seed_config_path, tmp_path, {"local_storage": {}})
    out = tmp_path / "out"
    code = main(
        [
            "--config", str(config), "--out", str(out),
            "--tokenizer-dir", str(qwen_tokenizer_dir),
            "--base-url", simulator.base_url, "--model-name", "Qwen/Qwen3-8B",
            "--input-tokens", "16", "--output-tokens", "4",
            "--rate", "2", "--duration", "1", "--num-workers", "1",
        ]
    )  # fmt: skip
    assert code == 0
    assert (out / "records.parquet").is_file() and (out / "run.json").is_file()
    assert not (tmp_path / "reports").exists()


def test_main_local_storage_path_differing_from_out_exit_2_names_both(
    seed_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    config = _config_with_storage(
        seed_config_path, tmp_path, {"local_storage": {"path": str(results)}}
    )
    out = tmp_path / "out"
    code = main(["--config", str(config), "--out", str(out), "--rate", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"load: --out {out} and storage.local_storage.path {results} differ; give one of them\n"
    )
    assert not out.exists() and not results.exists()


def test_main_stages_and_distribution_flags_shape_the_config() -> None:
    """`--stages` replaces the scenario's stages whole; the distribution flags set single
    fields of its distributions and keep the rest (and the distribution type)."""
    args = _parser().parse_args(
        [
            *("--out", "x", "--scenario", "saturation", "--stages", "2x3,4.5x6"),
            *("--input-mean", "600", "--output-max", "300", "--tokenizer-dir", ""),
        ]
    )
    config = _settings(args).config
    assert [(s.rate, s.duration) for s in config.load.stages] == [(2, 3), (4.5, 6)]
    inp, out = config.data.input_distribution, config.data.output_distribution
    assert inp.type.value == "normal"
    assert (inp.mean, inp.std_dev, inp.min, inp.max) == (600, 128, 128, 2048)
    assert (out.mean, out.std_dev, out.min, out.max) == (256, 64, 32, 300)


def test_main_rate_on_a_closed_loop_config_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "closed.yml"
    config.write_text(
        "load: {type: concurrent, stages: [{num_requests: 4, concurrency_level: 2}]}\n"
        "server: {base_url: 'http://127.0.0.1:9', model_name: m}\n"
    )
    code = main(["--config", str(config), "--out", str(tmp_path / "o"), "--rate", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--rate/--duration: the config's stages are closed-loop" in err[0]


def test_main_sweep_scenario_takes_the_probes_stages() -> None:
    args = _parser().parse_args(
        ["--out", "x", "--scenario", "sweep", "--stages", "1x180,7.5x180", "--tokenizer-dir", ""]
    )
    config = _settings(args).config
    assert [(s.rate, s.duration) for s in config.load.open_loop_stages()] == [(1, 180), (7.5, 180)]
    assert config.load.sweep is not None
