"""The sweep probe (`python -m steps.load probe`): find the server's saturation rate with the
load engine itself, then write the sweep's stages for the load step.

It reads `load.sweep` of the config and runs the estimator it names (`steps.load.saturation`):
`ladder` (closed-loop rungs of 1, 2, 4, ... users, each a load run of `load.type: concurrent`
with 6 requests per user, until throughput stops growing or `num_requests` is spent) or `burst`
(inference-perf's burst-and-drain: one constant stage of `num_requests` in 5 s, watched for
`timeout` s). Each load run keeps its records under `OUT/runs/` (the evidence), and the probe
writes:

- `OUT/probe.json`: the estimator, the saturation rate, the generated stages and the evidence
  (ladder: every rung's users, throughput, latency, in flight and Little's-law ratio; burst: the
  in-flight samples and the drain rates);
- with `--outputs-dir DIR`: `DIR/stages`, the stages as `RATExSECONDS,...`
  (`steps.stage_spec`, what the load step's `--stages` takes), and `DIR/saturation_rate`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from steps.errors import BenchError, UsageError
from steps.load.config import (
    CONCURRENT,
    ConcurrentStage,
    Config,
    Stage,
    SweepConfig,
)
from steps.load.plan import LoadSettings
from steps.load.run import run
from steps.load.saturation import (
    BURST_SECONDS,
    Rung,
    burst_drain_rate,
    ladder_capacity,
    ladder_done,
    ladder_rung,
    sweep_rates,
)
from steps.names import new_run_id
from steps.outputs import format_number, write_outputs
from steps.record_metrics import as_float, ok_rows
from steps.records import RECORDS_FILE, RUN_FILE
from steps.shared import LADDER_MAX_RUNGS, LADDER_REQUESTS_PER_USER, LoadType, SweepEstimator
from steps.stage_spec import format_stages

__all__ = ["PROBE_FILE", "ProbeResult", "probe"]

log = logging.getLogger(__name__)

#: The probe's evidence file in its --out directory.
PROBE_FILE = "probe.json"


@dataclass(frozen=True)
class ProbeResult:
    """The saturation rate found, the stages generated from it, and how it was found."""

    estimator: str
    saturation_rate: float
    stages: list[tuple[float, int]]
    evidence: dict[str, Any]

    @property
    def spec(self) -> str:
        """The stages as the load step's --stages takes them."""
        return format_stages(self.stages)


def probe(settings: LoadSettings, outputs_dir: Path | None) -> ProbeResult:
    """Probe, write probe.json (and the output parameters), return the result."""
    sweep = settings.config.load.sweep
    if sweep is None:
        raise UsageError("the probe needs a load.sweep block in the config (its type at least)")
    if settings.config.load.is_concurrent:
        raise UsageError("the probe sweeps rates: load.type must be constant or poisson")
    chosen = sweep.estimator
    if chosen is SweepEstimator.ladder:
        saturation, evidence = _ladder(settings, sweep)
    else:
        saturation, evidence = _burst(settings, sweep)
    rates = sweep_rates(saturation, sweep.num_stages, sweep.type)
    result = ProbeResult(
        chosen.value, saturation, [(r, sweep.stage_duration) for r in rates], evidence
    )
    _write(settings.out_dir, result, outputs_dir)
    log.info("saturation %.2f/s (%s); stages %s", saturation, chosen.value, result.spec)
    return result


def _with_load(config: Config, **load: Any) -> Config:
    """`config` with `load` fields replaced and no sweep: one of the probe's load runs."""
    return config.model_copy(
        update={"load": config.load.model_copy(update={"sweep": None, **load})}
    )


def _run_once(settings: LoadSettings, config: Config, name: str) -> tuple[Any, dict[str, Any]]:
    """One load run of the probe under OUT/runs/NAME; returns its records and run.json."""
    out = settings.out_dir / "runs" / name
    result = run(dataclasses.replace(settings, config=config, out_dir=out, run_id=new_run_id()))
    if result.incomplete_reasons:
        raise BenchError(
            f"probe run {name} incomplete: {'; '.join(result.incomplete_reasons)} (see {out})"
        )
    return pq.read_table(out / RECORDS_FILE), json.loads((out / RUN_FILE).read_text())


def _ladder(settings: LoadSettings, sweep: SweepConfig) -> tuple[float, dict[str, Any]]:
    """Closed-loop rungs of 1, 2, 4, ... users until throughput stops growing."""
    rungs: list[Rung] = []
    budget = sweep.num_requests
    users, reason = 1, f"the ladder's {LADDER_MAX_RUNGS} rungs were climbed"
    while len(rungs) < LADDER_MAX_RUNGS:
        requests = users * LADDER_REQUESTS_PER_USER
        if requests > budget:
            reason = (
                f"load.sweep.num_requests spent before throughput stopped growing: the "
                f"saturation rate is a lower bound (next rung: {users} users, {requests} requests)"
            )
            break
        budget -= requests
        config = _with_load(
            settings.config,
            type=CONCURRENT,
            stages=[ConcurrentStage(num_requests=requests, concurrency_level=users)],
            request_timeout=sweep.timeout,
        )
        table, run_json = _run_once(settings, config, f"users-{users}")
        rung = ladder_rung(
            users,
            as_float(table.column("sent_ns")),
            as_float(table.column("end_ns")),
            ok_rows(table.column("status")),
            float(run_json["stages"][0]["start_ns"]),
        )
        rungs.append(rung)
        log.info(
            "rung %d users: %.2f/s, latency %.3f s, %.2f in flight (Little's law %.2f), %d failed",
            users, rung.throughput, rung.latency_s, rung.in_flight, rung.littles_law, rung.failed,
        )  # fmt: skip
        if ladder_done(rungs):
            reason = "throughput stopped growing" if rung.failed <= 0.05 * requests else (
                f"{rung.failed} of {requests} requests failed at {users} users"
            )  # fmt: skip
            break
        users *= 2
    if not rungs:
        raise UsageError(
            f"load.sweep.num_requests {sweep.num_requests} is too few for one ladder rung "
            f"({LADDER_REQUESTS_PER_USER} requests)"
        )
    if not ladder_done(rungs):
        log.warning("ladder stopped early: %s", reason)
    evidence = {
        "stop_reason": reason,
        "lower_bound": not ladder_done(rungs),
        "rungs": [{**dataclasses.asdict(r), "littles_law": round(r.littles_law, 4)} for r in rungs],
        "client_bound_rungs": [r.users for r in rungs if r.in_flight < 0.9 * r.users],
    }
    return ladder_capacity(rungs), evidence


def _burst(settings: LoadSettings, sweep: SweepConfig) -> tuple[float, dict[str, Any]]:
    """inference-perf's burst-and-drain: num_requests in 5 s, watched for `timeout` s."""
    config = _with_load(
        settings.config,
        type=LoadType.constant,
        stages=[Stage(rate=sweep.num_requests / BURST_SECONDS, duration=BURST_SECONDS)],
        drain_timeout=max(sweep.timeout - BURST_SECONDS, 0.0),
    )
    table, _ = _run_once(settings, config, "burst")
    found = burst_drain_rate(
        as_float(table.column("sent_ns")),
        as_float(table.column("end_ns")),
        sweep.timeout,
        sweep.saturation_percentile,
    )
    evidence = {
        "in_flight_samples": found.in_flight,
        "drain_rates": found.drain_rates,
        "saturation_percentile": found.percentile,
        "completed_within_timeout": int(np.count_nonzero(ok_rows(table.column("status")))),
    }
    return found.saturation_rate, evidence


def _write(out_dir: Path, result: ProbeResult, outputs_dir: Path | None) -> None:
    doc = {
        "estimator": result.estimator,
        "saturation_rate": result.saturation_rate,
        "stages": result.spec,
        "evidence": result.evidence,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / PROBE_FILE).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot write {out_dir / PROBE_FILE}: {exc}") from None
    if outputs_dir is not None:
        rate = result.saturation_rate if math.isfinite(result.saturation_rate) else None
        write_outputs(outputs_dir, {"stages": result.spec, "saturation_rate": format_number(rate)})
