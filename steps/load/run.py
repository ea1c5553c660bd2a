"""Orchestration of one load run, in four phases: plan, start, drive, finish.

- plan (before t0, `steps.load.plan`): tokenizer and prompts, every request's bytes, each
  worker's share; nothing expensive is left for the hot loops.
- start: workers spawn and warm up (`steps.load.supervisor`); t0 is set once every worker is
  ready, and every worker gets the same monotonic t0 plus its wall-clock anchor.
- drive: stage k starts when every worker is done with stage k-1; each worker sends its share at
  `start_k + offset`, waits for its in-flight requests (at most `drain_timeout` past the send
  window, then they are `timeout` rows) and reports done. SIGTERM/SIGINT: workers record
  in-flight requests as `cancelled` and flush; the run still finishes.
- finish: records the workers could not write are written here, the parts are merged, and
  run.json (`steps.load.run_file`) says whether every scheduled request is a row and, if not,
  every reason.

run.json is written at t0 already, marked incomplete, so a main process killed mid-run leaves a
run the merge command can recover (`steps.load.recover`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import BenchError, UsageError
from steps.load.end_summary import format_summary, summarize
from steps.load.live_progress import Progress
from steps.load.model_lookup import resolve_model
from steps.load.plan import (
    LoadSettings,
    build_requests,
    check_supported,
    request_headers,
    worker_specs,
)
from steps.load.run_file import RunFile, iso_utc
from steps.load.schedule import StagePlan, plan_stages
from steps.load.supervisor import Supervisor, supervised
from steps.load.worker import process_cpu_s
from steps.load.writer import merge_parts, part_rows, write_part
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE, merge_command

__all__ = ["LoadResult", "keep_unwritten", "run"]

log = logging.getLogger(__name__)

_LEAD_NS = 50_000_000  # stage start this far after the go message: every worker is waiting


@dataclass(frozen=True)
class LoadResult:
    """What `main` needs to choose the exit code."""

    records: int
    failed: int
    summary_text: str
    scheduled: int
    incomplete_reasons: tuple[str, ...]  # empty = complete: every scheduled request is a row


@dataclass(frozen=True)
class _CpuTimes:
    """CPU seconds of the setup (prompts, start-up) and of the load processes since t0."""

    setup_s: float
    client_s: float


def run(settings: LoadSettings) -> LoadResult:
    """Run the load; writes records.parquet and run.json into settings.out_dir."""
    config = settings.config
    check_supported(config)
    parts_dir = _fresh_parts_dir(settings.out_dir)
    headers = request_headers(config)
    model = resolve_model(config, headers)
    plans = plan_stages(config.load.stages, config.load.type, config.load.seed)
    setup_cpu0 = process_cpu_s()
    requests = build_requests(settings, model, plans)
    specs = worker_specs(settings, headers, plans, requests, parts_dir)
    run_file = RunFile(settings, model, scheduled=requests.total, dataset=requests.dataset)
    progress = Progress(requests.total)
    with supervised(specs, progress) as supervisor:
        main_cpu0 = _start(supervisor, run_file, plans)
        setup_cpu_s = main_cpu0 - setup_cpu0
        _drive(supervisor, run_file, plans)
        supervisor.shutdown()
        progress.show(time.monotonic(), force=True)
        progress.close()
    client_cpu_s = supervisor.workers_cpu_s() + (process_cpu_s() - main_cpu0)
    return _finish(supervisor, run_file, parts_dir, _CpuTimes(setup_cpu_s, client_cpu_s))


def _fresh_parts_dir(out_dir: Path) -> Path:
    """`out_dir`/records.parts, created empty; parts left there would be merged into this run."""
    parts_dir = out_dir / PARTS_DIR
    try:
        parts_dir.mkdir(parents=True, exist_ok=True)
        stale = next(parts_dir.iterdir(), None)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out_dir}: {exc.strerror}") from None
    if stale is not None:
        raise UsageError(
            f"--out {out_dir}: {parts_dir.name}/ still holds {stale.name} from an interrupted "
            f"run; recover it with `{merge_command(out_dir)}`, or use another --out"
        )
    return parts_dir


def _start(supervisor: Supervisor, run_file: RunFile, plans: list[StagePlan]) -> float:
    """Wait until every worker is ready (warmed up), then set t0; returns the CPU time then."""
    supervisor.wait_for(lambda: supervisor.alive <= supervisor.ready)
    if supervisor.warmup_errors:
        log.warning("%d warm-up requests failed", supervisor.warmup_errors)
    cpu_s = process_cpu_s()
    mono, wall = time.monotonic_ns(), time.time_ns()
    run_file.t0, run_file.wall_start = mono + _LEAD_NS, wall + _LEAD_NS
    if not supervisor.alive:
        raise BenchError("every load worker exited before the run started; see the log above")
    log.info(
        "run %s: %d requests in %d stage(s), %d workers, t0 wall %s",
        run_file.settings.run_id,
        run_file.scheduled,
        len(plans),
        len(supervisor.procs),
        iso_utc(run_file.wall_start),
    )
    return cpu_s


def _drive(supervisor: Supervisor, run_file: RunFile, plans: list[StagePlan]) -> None:
    """Run the stages in order, each after every worker finished the one before (or a signal)."""
    t0 = run_file.t0
    for plan in plans:
        if supervisor.signal_name:
            break
        start = t0 if plan.stage == 0 else time.monotonic_ns() + _LEAD_NS
        supervisor.stage_done.clear()
        supervisor.broadcast(("stage", plan.stage, start, t0, run_file.wall_start))
        window = plan.window_ns
        row: dict[str, Any] = {
            "stage": plan.stage,
            "rate": plan.rate,
            "duration_s": plan.duration_s,
            "start_ns": start - t0,
            # closed loop: its users send until the stage ends, so that is its send window
            "send_end_ns": None if window is None else start - t0 + window,
            "end_ns": None,
        }
        if plan.concurrency is not None:
            row["concurrency_level"] = plan.concurrency
            row["num_requests"] = len(plan.offsets_ns)
        run_file.stages.append(row)
        run_file.write_unfinished()  # after the broadcast: never delays a stage's start
        finished = supervisor.wait_for(lambda: supervisor.alive <= set(supervisor.stage_done))
        ends = list(supervisor.stage_done.values())
        row["end_ns"] = (max(ends) if finished and ends else time.monotonic_ns()) - t0
        if window is None:
            row["send_end_ns"] = row["end_ns"]
        log.info("stage %d done: %.1f s", plan.stage, (row["end_ns"] - row["start_ns"]) / 1e9)


def _finish(
    supervisor: Supervisor, run_file: RunFile, parts_dir: Path, cpu: _CpuTimes
) -> LoadResult:
    """Write what workers handed over, merge the parts, write the final run.json, summarize."""
    out_dir = run_file.settings.out_dir
    total = run_file.scheduled
    lost = supervisor.lost_workers()
    reasons = [f"interrupted by {supervisor.signal_name}"] if supervisor.signal_name else []
    reasons += [
        f"worker {w} exited (code {supervisor.exit_code(w)}) without finishing: its unsent "
        "requests and unflushed records are missing"
        for w in lost
    ]
    reasons += keep_unwritten(supervisor.unwritten, parts_dir)
    merge_error: BenchError | None = None
    try:
        rows = merge_parts(parts_dir, out_dir / RECORDS_FILE)
        parts_dir.rmdir()
    except BenchError as exc:  # a full disk: the parts stay for the merge command
        merge_error, rows = exc, part_rows(parts_dir)
        reasons.append(str(exc))
    if rows != total and not reasons:  # the invariant itself: never a silent gap
        reasons.append(f"{total - rows} scheduled requests have no record")
    completeness = {
        "complete": not reasons,
        "scheduled_requests": total,
        "recorded_requests": rows,
        "missing_requests": total - rows,
        "interrupted": supervisor.signal_name,
        "lost_workers": lost,
        "incomplete_reasons": reasons,
    }
    resent = supervisor.resent_requests()
    if resent:
        log.info(
            "%d requests resent once on a new connection after a stale keep-alive close "
            "(the lost attempt counts as schedule delay)",
            resent,
        )
    try:
        run_file.write(cpu.client_s, cpu.setup_s, completeness, resent)
    except OSError as exc:
        raise BenchError(
            f"cannot write {out_dir / RUN_FILE} ({exc.strerror or exc}); "
            f"{rows} of {total} scheduled requests are recorded in {out_dir}"
        ) from None
    if merge_error is not None:
        raise merge_error
    records = pq.read_table(out_dir / RECORDS_FILE)
    summary = summarize(records, run_file.stages, cpu.client_s, resent)
    return LoadResult(rows, summary.failed, format_summary(summary), total, tuple(reasons))


def keep_unwritten(unwritten: list[tuple[int, pa.Table, str | None]], parts_dir: Path) -> list[str]:
    """Write the records workers could not (their file descriptors ran out, say) as parts.

    Returns one reason per table that could not be written here either (a full disk).
    """
    reasons = []
    for i, (worker, table, error) in enumerate(unwritten):
        try:
            write_part(table, parts_dir, worker, i + 1, handed_over=True)
        except (OSError, pa.ArrowException) as exc:
            reasons.append(
                f"{table.num_rows} records of worker {worker} could not be written ({error}; "
                f"nor by the main process: {exc})"
            )
        else:
            log.warning("wrote %d records worker %d could not (%s)", table.num_rows, worker, error)
    return reasons
