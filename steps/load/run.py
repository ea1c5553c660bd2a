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

One of several load pods (`--load-pods N --pod-index i --coordinator HOST`): the run id comes
from the coordinator (steps.load.coordinator), the pod plans only its share, measures its clock
offset against the coordinator, and t0 and every later stage start are barriers there: each
starts at the instant the coordinator names, converted to this pod's clock, and `wall_start_ns`
is that instant on the coordinator's clock, the same in every pod's run.json and records, so the
shards merge onto one time line (steps/aggregate/read.py). A stage ends when the last pod's
workers are done with it: every pod records that same end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import BenchError, UsageError
from steps.load.early_stop import EarlyStopper, check_early_stop
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
from steps.load.pod_link import NO_OFFSET, PodLink
from steps.load.run_file import RunFile, iso_utc
from steps.load.schedule import StagePlan, plan_stages
from steps.load.scrape import Sampler
from steps.load.supervisor import Supervisor, supervised
from steps.load.worker import process_cpu_s
from steps.load.writer import merge_parts, part_rows, write_part
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE, merge_command
from steps.server_metrics import SERVER_METRICS_FILE

__all__ = ["LoadResult", "keep_unwritten", "run"]

log = logging.getLogger(__name__)

_LEAD_NS = 50_000_000  # stage start this far after the go message: every worker is waiting
#: A pod that gets the coordinator's start with less than this left fails instead of starting.
_MIN_LEFT_NS = 5_000_000
#: How long the other pods may take to finish a stage after the first pod finished it, past
#: the drain timeout (which bounds how long any pod drains after the send window).
_STAGE_SKEW_S = 60.0

T = TypeVar("T")


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


class _Pods:
    """This pod's link to the others (None with one pod): barriers and their clock."""

    def __init__(self, settings: LoadSettings) -> None:
        self.fanout = settings.fanout
        self.link: PodLink | None = None
        self.failure: str | None = None  # why the pods could not go on together after t0
        self.clock = NO_OFFSET
        if self.fanout is not None:
            pods = settings.pods
            self.link = PodLink(
                self.fanout.coordinator, pods.index, pods.count, self.fanout.start_timeout_s
            )
            self.clock = self.link.measure_clock()
            log.info(
                "load pod %d of %d, run %s: clock offset against the coordinator %+.3f ms "
                "(round trip %.3f ms)",
                pods.index, pods.count, self.link.run_id, self.clock.offset_ns / 1e6,
                self.clock.rtt_ns / 1e6,
            )  # fmt: skip

    def barrier(
        self, supervisor: Supervisor, name: str, value: Any, timeout_s: float
    ) -> tuple[int, int, list[Any]]:
        """Wait (reading the workers meanwhile) until every pod reached `name`: (monotonic and
        coordinator-clock ns of the start it names, every pod's value). Raises BenchError when
        the start is (nearly) past on arrival or the coordinator failed the run."""
        assert self.link is not None
        link = self.link
        start_wall, values = _pumped(supervisor, lambda: link.barrier(name, value, timeout_s))
        mono, wall = time.monotonic_ns(), time.time_ns()
        left = start_wall - self.clock.offset_ns - wall
        if left < _MIN_LEFT_NS:
            raise BenchError(
                f"load pod {link.pod}: the start of {name!r} arrived {-left / 1e6:.1f} ms "
                "past it (or too close to start on time): raise the coordinator's --start-lead-s"
            )
        return mono + left, start_wall, values

    def close(self, finished: bool) -> None:
        if self.link is not None:
            self.link.finish() if finished else self.link.close()


def _pumped(supervisor: Supervisor, call: Callable[[], T]) -> T:
    """`call()` in a thread while the supervisor reads the workers; a signal stops the wait."""
    with ThreadPoolExecutor(1) as pool:
        future: Future[T] = pool.submit(call)
        supervisor.wait_for(future.done)
        if not future.done():
            raise BenchError(f"interrupted by {supervisor.signal_name} while waiting for the pods")
        return future.result()


def run(settings: LoadSettings) -> LoadResult:
    """Run the load; writes records.parquet and run.json into settings.out_dir."""
    config = settings.config
    check_supported(config)
    parts_dir = _fresh_parts_dir(settings.out_dir)
    headers = request_headers(config)
    pods = _Pods(settings)
    finished = False
    sampler = Sampler(None)
    try:
        if pods.link is not None:
            settings = replace(settings, run_id=pods.link.run_id)
        model = resolve_model(config, headers)
        plans = plan_stages(config.load.stages, config.load.type, config.load.seed)
        check_early_stop(config.load.early_stop, plans, settings.pods.count)
        stopper = EarlyStopper(config.load.early_stop) if config.load.early_stop else None
        setup_cpu0 = process_cpu_s()
        requests = build_requests(settings, model, plans)
        specs = worker_specs(settings, headers, plans, requests, parts_dir)
        run_file = RunFile(
            settings, model, scheduled=requests.total, dataset=requests.dataset, clock=pods.clock
        )
        run_file.early_stop = stopper.run_json() if stopper else None
        progress = Progress(requests.total)
        sampler = _sampler(settings, headers)
        with supervised(specs, progress) as supervisor:
            sampler.wait_ready()
            main_cpu0 = _start(supervisor, run_file, plans, pods)
            sampler.start(run_file.t0, run_file.wall_start)
            setup_cpu_s = main_cpu0 - setup_cpu0
            _drive(supervisor, run_file, plans, pods, stopper)
            run_file.server_metrics = sampler.stop()
            supervisor.shutdown()
            progress.show(time.monotonic(), force=True)
            progress.close()
        client_cpu_s = supervisor.workers_cpu_s() + (process_cpu_s() - main_cpu0)
        cpu = _CpuTimes(setup_cpu_s, client_cpu_s)
        result = _finish(supervisor, run_file, parts_dir, cpu, pods.failure)
        finished = not supervisor.signal_name and pods.failure is None
        return result
    finally:
        sampler.close()
        pods.close(finished)


def _sampler(settings: LoadSettings, headers: dict[str, str]) -> Sampler:
    """The server-metrics scraper process, started now so it is warm by t0 (off: a no-op)."""
    path = settings.out_dir / SERVER_METRICS_FILE
    base_url = settings.config.server.base_url
    return Sampler(settings.metrics.spec(base_url, headers, path, settings.log_level))


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


def _start(supervisor: Supervisor, run_file: RunFile, plans: list[StagePlan], pods: _Pods) -> float:
    """Wait until every worker (and every pod) is ready (warmed up), then set t0; returns the
    CPU time then."""
    supervisor.wait_for(lambda: supervisor.alive <= supervisor.ready)
    if supervisor.warmup_errors:
        log.warning("%d warm-up requests failed", supervisor.warmup_errors)
    if not supervisor.alive:
        raise BenchError("every load worker exited before the run started; see the log above")
    cpu_s = process_cpu_s()
    if pods.fanout is None:
        mono, wall = time.monotonic_ns(), time.time_ns()
        run_file.t0, run_file.wall_start = mono + _LEAD_NS, wall + _LEAD_NS
    else:
        timeout_s = pods.fanout.start_timeout_s
        run_file.t0, run_file.wall_start, _ = pods.barrier(supervisor, "ready", None, timeout_s)
    log.info(
        "run %s: %d requests in %d stage(s), %d workers, t0 wall %s",
        run_file.settings.run_id,
        run_file.scheduled,
        len(plans),
        len(supervisor.procs),
        iso_utc(run_file.wall_start),
    )
    return cpu_s


def _drive(
    supervisor: Supervisor,
    run_file: RunFile,
    plans: list[StagePlan],
    pods: _Pods,
    stopper: EarlyStopper | None,
) -> None:
    """Run the stages in order, each after every worker (of every pod) finished the one before
    (or a signal), until the early stop (`stopper`) finds a stage saturated."""
    t0 = run_file.t0
    next_start = t0
    for i, plan in enumerate(plans):
        if supervisor.signal_name:
            break
        start = next_start
        supervisor.stage_done.clear()
        supervisor.stage_tallies.clear()
        supervisor.broadcast(("stage", plan.stage, start, t0, run_file.wall_start))
        window = plan.window_ns
        row: dict[str, Any] = {
            "stage": plan.stage,
            # this pod's share of the rate: aggregate sums the shards' rates
            "rate": None if plan.rate is None else plan.rate / run_file.settings.pods.count,
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
        next_start = time.monotonic_ns() + _LEAD_NS
        if pods.fanout is not None and not supervisor.signal_name:
            timeout_s = run_file.settings.config.load.drain_timeout + _STAGE_SKEW_S
            name = f"stage {plan.stage} done"
            try:
                next_start, _, pod_ends = pods.barrier(supervisor, name, row["end_ns"], timeout_s)
            except BenchError as exc:  # another pod was lost: keep what this one measured
                pods.failure = str(exc)
                log.error("%s", exc)
                break
            row["end_ns"] = max(pod_ends)  # one stage timeline: the last pod's end
        log.info("stage %d done: %.1f s", plan.stage, (row["end_ns"] - row["start_ns"]) / 1e9)
        if _stop_early(supervisor, run_file, plans[i:], stopper):
            break


def _stop_early(
    supervisor: Supervisor, run_file: RunFile, rest: list[StagePlan], stopper: EarlyStopper | None
) -> bool:
    """After the stage `rest[0]`: whether the early stop skips `rest[1:]` (recorded in
    run.json, and their requests no longer scheduled)."""
    if stopper is None or len(rest) < 2 or supervisor.signal_name:
        return False
    if not stopper.saturated(rest[0], supervisor.stage_tallies.values()):
        return False
    run_file.scheduled -= stopper.skip(rest[1:])
    run_file.early_stop = stopper.run_json()
    return True


def _finish(
    supervisor: Supervisor,
    run_file: RunFile,
    parts_dir: Path,
    cpu: _CpuTimes,
    pods_failure: str | None,
) -> LoadResult:
    """Write what workers handed over, merge the parts, write the final run.json, summarize.

    `pods_failure`: why this pod stopped going on with the others (a pod lost mid-run)."""
    out_dir = run_file.settings.out_dir
    total = run_file.scheduled
    lost = supervisor.lost_workers()
    reasons = [f"interrupted by {supervisor.signal_name}"] if supervisor.signal_name else []
    reasons += [pods_failure] if pods_failure else []
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
