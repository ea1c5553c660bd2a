"""The load step's run.json (an Argo artifact, uploaded by the report) carries no header secret."""

from __future__ import annotations

import json
from pathlib import Path

from steps.load.__main__ import main as load_main
from steps.redact import REDACTED
from tests.fixtures.simulator import SimulatorHandle


def test_load_run_json_redacts_secret_header_values(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    secrets = ("xk-run-json-0123456789", "ak-run-json-0123456789", "bt-run-json-0123456789")
    headers = {
        "X-Api-Key": secrets[0],
        "api-key": secrets[1],
        "Authorization": f"Bearer {secrets[2]}",
    }
    config = tmp_path / "config.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "api": {"headers": {**headers, "X-Trace": "keep-me"}},
                "load": {"stages": [{"rate": 4, "duration": 1}], "num_workers": 1},
                "server": {"base_url": simulator.base_url, "model_name": simulator.model},
                "data": {
                    "input_distribution": {
                        "type": "fixed",
                        "mean": 32,
                        "std_dev": 0,
                        "min": 32,
                        "max": 32,
                    },
                    "output_distribution": {
                        "type": "fixed",
                        "mean": 4,
                        "std_dev": 0,
                        "min": 4,
                        "max": 4,
                    },
                },
            }
        )
    )
    out = tmp_path / "load"
    argv = ["--out", str(out), "--config", str(config), "--tokenizer-dir", str(qwen_tokenizer_dir)]
    assert load_main(argv) == 0
    text = (out / "run.json").read_text()
    for secret in secrets:
        assert secret not in text
    sent = json.loads(text)["config"]["api"]["headers"]
    assert sent == {"X-Api-Key": REDACTED, "api-key": REDACTED, "Authorization": REDACTED,
                    "X-Trace": "keep-me"}  # fmt: skip
