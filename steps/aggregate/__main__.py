"""`python -m steps.aggregate --records PATH [PATH ...] --out DIR`: records -> summary files.

    [--slo-ttft-ms X] [--slo-tpot-ms Y] [--slo-e2e-ms Z]: per-request SLO bounds ("" or absent =
    not a bound); with any of them, each GROUP gets `goodput` and `slo_attainment`.

Writes summary.parquet (tidy), summary.json (steps/CONTRACTS.md layout, ms), and inference-perf's
summary_lifecycle_metrics.json + stage_N_lifecycle_metrics.json (seconds). Exit 0 when the
summary was written (failed requests are data, not a step failure), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from steps.aggregate.lifecycle import lifecycle_json
from steps.aggregate.metrics import IntHistogram, scan_itl, scan_token_sums
from steps.aggregate.pods import pod_figures
from steps.aggregate.read import (
    Shard,
    check_one_run,
    check_unique_requests,
    iter_batches,
    load_shards,
    read_requests,
)
from steps.aggregate.server_metrics import read_shard_samples, server_group
from steps.aggregate.summary import (
    GroupMetrics,
    Window,
    group_model,
    measure_group,
    overall_window,
    stage_model,
    stage_windows,
    tidy_frame,
)
from steps.cli import add_log_level_flag, configure_logging, make_parser, run_main
from steps.errors import BenchError, UsageError
from steps.record_metrics import TIME_COLUMNS, Slo, latencies_ns
from steps.records import RUN_FILE
from steps.summary_model import Group, RunSection, SloSection, Summary

__all__ = ["AggregateConfig", "AggregateResult", "main", "run"]

_log = logging.getLogger(__name__)
GroupT = TypeVar("GroupT", bound=Group)
_STEP = "aggregate"
_ITL_COLUMNS = ("stage", "status", "chunk_offsets_us")
_SLO_FIELDS = ("slo_ttft_ms", "slo_tpot_ms", "slo_e2e_ms")
#: Distribution.divided() divisor from µs to ns.
_US_PER_NS = 1e-3


class AggregateConfig(BaseModel):
    """What to aggregate and where to write it."""

    model_config = ConfigDict(extra="forbid")

    records: list[Path] = Field(
        min_length=1,
        description="records.parquet files or directories holding one (+ run.json); shards merge",
    )
    out: Path = Field(description="output directory for summary.* and *_lifecycle_metrics.json")
    slo_ttft_ms: float | None = Field(
        None, gt=0, description="SLO: time to first token at most this (ms); empty = no bound"
    )
    slo_tpot_ms: float | None = Field(
        None, gt=0, description="SLO: time per output token at most this (ms); empty = no bound"
    )
    slo_e2e_ms: float | None = Field(
        None, gt=0, description="SLO: end-to-end latency at most this (ms); empty = no bound"
    )

    @property
    def slo(self) -> Slo:
        """The per-request SLO the goodput is counted against."""
        return Slo(self.slo_ttft_ms, self.slo_tpot_ms, self.slo_e2e_ms)


@dataclass(frozen=True)
class AggregateResult:
    """The summary.json document and the files written."""

    summary: Summary
    files: list[Path]


def _run_meta(
    shards: Sequence[Shard], first_run_id: str | None, requests: pd.DataFrame
) -> RunSection:
    """summary.json "run": the first shard's run.json minus config, plus the shard count.

    Completeness is over every shard (one incomplete shard makes the run incomplete); it is
    left out only when no shard's run.json records it (written before the field existed). The
    counts and CPU times are summed: each shard's run.json counts its own share of the run.
    Several shards add each pod's own figures (`pods`, steps.aggregate.pods).
    """
    first = shards[0].run_meta
    meta: dict[str, Any] = dict(first) if first is not None else {"run_id": first_run_id}
    metas = [shard.run_meta or {} for shard in shards]
    if any("complete" in m for m in metas):
        meta["complete"] = all(m.get("complete") is True for m in metas)
        for key in ("scheduled_requests", "recorded_requests", "missing_requests"):
            values = [m.get(key) for m in metas]
            ints = [v for v in values if isinstance(v, int)]
            meta[key] = sum(ints) if len(ints) == len(values) else None
        meta["incomplete_reasons"] = [r for m in metas for r in m.get("incomplete_reasons") or []]
        meta["interrupted"] = next((m["interrupted"] for m in metas if m.get("interrupted")), None)
    if len(shards) > 1:
        for key in ("client_cpu_s", "setup_cpu_s"):
            values = [m.get(key) for m in metas]
            numbers = [v for v in values if isinstance(v, (int, float))]
            meta[key] = round(sum(numbers), 4) if len(numbers) == len(values) else None
        meta |= pod_figures(shards, requests)
    try:
        return RunSection.model_validate(meta | {"shards": len(shards)})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        run_file = shards[0].records_path.parent / RUN_FILE
        raise UsageError(f"run file '{run_file}': {where}: {error['msg']}") from None


def _first_run_id(shards: Sequence[Shard]) -> str | None:
    for shard in shards:
        if shard.rows:
            table = pq.ParquetFile(shard.records_path).read_row_group(0, columns=["run_id"])
            return str(table.column("run_id")[0].as_py()) if table.num_rows else None
    return None


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def run(config: AggregateConfig) -> AggregateResult:
    """Aggregate every shard into the four summary outputs under `config.out`."""
    shards = load_shards(config.records)
    check_one_run(shards)
    slo = config.slo
    origin_ns = min(shard.wall_start_ns for shard in shards)
    # The two list columns hold ~10^8 items each: decode and reduce them on two threads
    # (Arrow and numpy release the GIL), streaming, while this thread derives the latencies.
    with ThreadPoolExecutor(max_workers=2) as pool:
        token_sums = pool.submit(scan_token_sums, iter_batches(shards, ["chunk_tokens"]))
        itl_scan = pool.submit(scan_itl, iter_batches(shards, _ITL_COLUMNS))
        requests = read_requests(shards, origin_ns)
        _log.info("read %d requests from %d shard(s)", len(requests), len(shards))
        check_unique_requests(requests)
        times = {name: requests[name].to_numpy() for name in TIME_COLUMNS}
        derived = latencies_ns(times, requests["output_tokens"].to_numpy())
        requests = requests.assign(**derived, chunk_token_sum=token_sums.result())
        itl_us = itl_scan.result()

    run_stages = {s.stage for shard in shards if shard.run for s in shard.run.stages}
    stages = sorted(set(requests["stage"].unique().tolist()) | run_stages)
    itl_by_stage = {
        s: (itl_us[s] if s in itl_us else IntHistogram()).describe().divided(_US_PER_NS)
        for s in stages
    }

    windows = stage_windows(shards, requests, origin_ns, stages)
    groups: list[GroupMetrics] = [
        measure_group(requests[requests["stage"] == s], itl_by_stage[s], windows[s], s, slo)
        for s in stages
    ]
    if len(groups) == 1 and groups[0].counts["total"] == len(requests):
        # One stage holding every request (the baseline scenario): overall is that stage.
        overall = replace(groups[0], stage=None)
    else:
        itl_overall = IntHistogram()
        for histogram in itl_us.values():
            itl_overall.merge(histogram)
        itl = itl_overall.describe().divided(_US_PER_NS)
        overall = measure_group(requests, itl, overall_window(windows), None, slo)
    samples = read_shard_samples(shards, origin_ns)

    def with_server(model: GroupT, window: Window, rows: pd.DataFrame) -> GroupT:
        if samples is None:
            return model
        return model.model_copy(update={"server": server_group(samples, window, rows)})

    summary = Summary(
        run=_run_meta(
            shards, _first_run_id(shards) if shards[0].run_meta is None else None, requests
        ),
        overall=with_server(group_model(overall), overall_window(windows), requests),
        stages=[
            with_server(stage_model(g, s), windows[s], requests[requests["stage"] == s])
            for g, s in zip(groups, stages, strict=True)
        ],
        slo=SloSection(ttft_ms=slo.ttft_ms, tpot_ms=slo.tpot_ms, e2e_ms=slo.e2e_ms),
    )
    return AggregateResult(summary, _write_outputs(config.out, summary, overall, groups))


def _write_outputs(
    out: Path, summary: Summary, overall: GroupMetrics, groups: Sequence[GroupMetrics]
) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = [
            out / "summary.parquet",
            out / "summary.json",
            out / "summary_lifecycle_metrics.json",
        ]
        pq.write_table(pa.Table.from_pandas(tidy_frame(summary), preserve_index=False), files[0])
        files[1].write_text(summary.to_json())
        _write_json(files[2], lifecycle_json(overall))
        for group in groups:
            if group.counts["total"]:
                files.append(out / f"stage_{group.stage}_lifecycle_metrics.json")
                _write_json(files[-1], lifecycle_json(group))
    except OSError as exc:
        raise BenchError(f"cannot write summary to '{out}': {exc.strerror or exc}") from exc
    return files


def _slo_flags(args: argparse.Namespace) -> dict[str, float | None]:
    """--slo-* values: "" (Argo's unset) = no bound; else a number > 0 (UsageError, one line)."""
    values: dict[str, float | None] = {}
    for name in _SLO_FIELDS:
        raw = str(getattr(args, name)).strip()
        flag = "--" + name.replace("_", "-")
        try:
            value = float(raw) if raw else None
        except ValueError:
            raise UsageError(f"{flag}: expected a number of ms or '', got {raw!r}") from None
        if value is not None and not value > 0:
            raise UsageError(f"{flag}: must be > 0 ms, got {raw!r}")
        values[name] = value
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = make_parser(f"python -m steps.{_STEP}", __doc__.splitlines()[0] if __doc__ else None)
    fields = AggregateConfig.model_fields
    parser.add_argument(
        "--records", nargs="+", type=Path, required=True, help=fields["records"].description
    )
    parser.add_argument("--out", type=Path, required=True, help=fields["out"].description)
    for name in _SLO_FIELDS:
        parser.add_argument(
            "--" + name.replace("_", "-"), default="", help=fields[name].description
        )
    add_log_level_flag(parser)

    def body() -> int:
        args = parser.parse_args(argv)
        configure_logging(_STEP, args.log_level)
        config = AggregateConfig(records=args.records, out=args.out, **_slo_flags(args))
        try:
            result = run(config)
        except (pa.ArrowException, OSError) as exc:
            # The schema check reads only the footer; a file damaged past it fails while
            # decoding pages (Arrow raises plain OSError for e.g. corrupt snappy data, and does
            # not name the file). Output failures never get here: _write_outputs translates them.
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(
                f"cannot decode the records in {[str(p) for p in args.records]}: {first_line}"
            ) from None
        overall = result.summary.overall
        _log.info(
            "wrote %d files to %s: %d requests, %d ok, saturated=%s",
            len(result.files),
            args.out,
            overall.requests.total,
            overall.requests.ok,
            overall.load_generator_saturated,
        )
        return 0

    return run_main(_STEP, body)


if __name__ == "__main__":
    sys.exit(main())
