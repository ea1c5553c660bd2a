"""Run the load step in-process against a test server and read back what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from steps.load.__main__ import main

__all__ = ["run_load", "ttft_errors_ms"]


def run_load(
    out: Path, base_url: str, tokenizer_dir: Path, *flags: str
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """`python -m steps.load` at 512 input / 128 output tokens plus `flags`; returns the exit
    code, the records as dicts and run.json."""
    code = main(
        [
            "--out",
            str(out),
            "--tokenizer-dir",
            str(tokenizer_dir),
            "--base-url",
            base_url,
            "--model-name",
            "Qwen/Qwen3-8B",
            "--input-tokens",
            "512",
            "--output-tokens",
            "128",
            *flags,
        ]
    )
    rows = pq.read_table(out / "records.parquet").to_pylist()
    run_json = json.loads((out / "run.json").read_text())
    return code, rows, run_json


def ttft_errors_ms(rows: list[dict[str, Any]], truth: list[dict[str, Any]], run_id: str) -> Any:
    """Client TTFT minus the simulator's (first chunk write - arrival) per row, in ms (array)."""
    by_id = {t["request_id"]: t for t in truth}
    errors = []
    for r in rows:
        t = by_id[f"{run_id}-{r['stage']}-{r['request_index']}"]
        server_ttft = t["chunk_wall_ns"][0] - t["arrival_wall_ns"]
        client_ttft = r["first_token_ns"] - r["sent_ns"]
        errors.append((client_ttft - server_ttft) / 1e6)
    return np.array(errors)
