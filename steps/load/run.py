"""Orchestration: prepare every request before t0, run the worker processes stage by stage,
drain, handle signals, merge the records and write run.json.

Timeline: tokenizer and prompts (before t0, never on a hot loop) -> workers start and warm up
-> t0 (all workers get the same monotonic t0 plus its wall-clock anchor) -> stage k: every
worker sends its share at `start_k + offset`, waits for its in-flight requests (at most
`drain_timeout` past the send window, then they are `timeout` rows) and reports done -> the
next stage starts when every worker is done. SIGTERM/SIGINT: workers record in-flight requests
as `cancelled` and flush; the records are merged and run.json written before exiting.

Completeness: run.json is written at t0 already, marked incomplete, so a main process killed
mid-run leaves a run the merge command can recover (`steps.load.recover`). At the end the
merged row count is compared with the scheduled count; run.json says `complete: true` only when
they match and nothing interrupted the run, and otherwise lists every reason.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import BenchError, UsageError
from steps.load.client import RequestSpec
from steps.load.config import Config, DataType, ServerType
from steps.load.connection import ConnectionPool
from steps.load.http1 import encode_request
from steps.load.model_lookup import resolve_model
from steps.load.progress import Progress, format_summary, summarize
from steps.load.prompts import PromptBuilder, load_tokenizer, sample_lengths
from steps.load.schedule import StagePlan, plan_stages, worker_share
from steps.load.worker import WorkerSpec, process_cpu_s, worker_main
from steps.load.writer import merge_parts, part_rows, write_part
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE, merge_command
from steps.redact import redact_tree
from steps.shared import APIType

__all__ = ["LoadResult", "LoadSettings", "run", "write_run_file"]

log = logging.getLogger(__name__)

_LEAD_NS = 50_000_000  # stage start this far after the go message: every worker is waiting
_STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class LoadSettings:
    """A resolved load run: config with overrides applied, plus where things come from/go."""

    config: Config
    out_dir: Path
    tokenizer_source: str
    run_id: str
    scenario: str
    log_level: str = "INFO"


@dataclass(frozen=True)
class LoadResult:
    """What `main` needs to choose the exit code."""

    records: int
    failed: int
    summary_text: str
    scheduled: int
    incomplete_reasons: tuple[str, ...]  # empty = complete: every scheduled request is a row


def request_body(config: Config, model: str, prompt: str, max_tokens: int) -> bytes:
    """The JSON body of one streamed request (built before t0)."""
    body: dict[str, Any] = {"model": model}
    if config.api.type is APIType.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body["max_tokens"] = max_tokens
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if config.server.ignore_eos and config.server.type in (ServerType.vllm, ServerType.sglang):
        body["ignore_eos"] = True
    if config.server.type is ServerType.vllm:
        # vLLM coalesces several tokens per chunk at times; token_ids make counts exact.
        body["return_token_ids"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _check_supported(config: Config) -> None:
    if not config.api.streaming:
        raise UsageError("api.streaming: false is not supported; TTFT and ITL need streaming")
    if config.data.type is DataType.shared_prefix:
        raise UsageError("data.type shared_prefix is not supported by the load step yet")


def _secret(env: str | None, what: str) -> str | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise UsageError(f"{what} names ${env}, but it is not set in the environment")
    return value


def _check_wire(base_url: str, headers: dict[str, str], api_key: str | None) -> None:
    """Fail before any worker starts if the URL, a header or the API key cannot go on the wire.

    The key is checked on its own so the message names server.api_key_env, not api.headers,
    and never quotes it (a secret mounted from a file often ends in a newline).
    """
    try:
        ConnectionPool(base_url)
    except ValueError as exc:
        raise UsageError(f"server.base_url: {exc}") from None
    try:
        encode_request("POST", "/", "host", headers)
    except ValueError as exc:
        raise UsageError(f"api.headers: {exc}") from None
    if api_key is not None:
        try:
            encode_request("POST", "/", "host", {"Authorization": f"Bearer {api_key}"})
        except ValueError:
            raise UsageError(
                "server.api_key_env: the key holds CR, LF, NUL or a non-latin-1 character, "
                "which cannot go in an HTTP header (a trailing newline?)"
            ) from None


class _Runner:
    """The main process's state while workers run."""

    def __init__(self, procs: list[Any], conns: list[Connection], progress: Progress) -> None:
        self.procs = procs
        self.conns = conns
        self.progress = progress
        self.alive = set(range(len(procs)))
        self.ready: set[int] = set()
        self.finished: dict[int, tuple[float, int]] = {}
        self.stage_done: dict[int, int] = {}
        self.warmup_errors = 0
        self.unwritten: list[tuple[int, pa.Table, str | None]] = []
        self.signal_name: str | None = None
        self.stop_sent = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    def pump(self, timeout_s: float) -> None:
        """Handle whatever arrived within `timeout_s`; forward a pending stop."""
        if self.signal_name and not self.stop_sent:
            self.stop_sent = True
            log.warning(
                "%s: stopping workers; in-flight requests become cancelled", self.signal_name
            )
            for w in self.alive:
                self._kill(w, signal.SIGTERM)
        by_conn = {id(self.conns[w]): w for w in self.alive}
        by_sentinel = {self.procs[w].sentinel: w for w in self.alive}
        objs: list[Any] = [self.conns[w] for w in self.alive] + list(by_sentinel)
        for obj in wait(objs, timeout=timeout_s) if objs else []:
            if isinstance(obj, int):
                self._gone(by_sentinel[obj])
                continue
            w = by_conn[id(obj)]
            if w in self.alive and not self._drain(w):
                self._gone(w)
        self.progress.show(time.monotonic())

    def _drain(self, w: int) -> bool:
        """Handle every message waiting from worker `w`; False once its pipe is closed."""
        conn = self.conns[w]
        try:
            while conn.poll():
                self._handle(w, conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _handle(self, w: int, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "progress":
            self.progress.update(w, msg[1], msg[2], msg[3], msg[4])
        elif kind == "ready":
            self.ready.add(w)
            self.warmup_errors += msg[1]
        elif kind == "stage_done":
            self.stage_done[w] = msg[2]
        elif kind == "unwritten":
            self.unwritten.append((w, msg[1], msg[2]))
        elif kind == "finished":
            self.finished[w] = (msg[1], msg[2])
            log.info("worker %d finished: %d records, %.2f s CPU since t0", w, msg[2], msg[1])

    def _gone(self, w: int) -> None:
        """Worker `w` exited: read what it sent last (the pipe outlives the process), join it.

        Its exit and its final messages can be seen in the same `wait`, in either order; without
        the read a worker that did finish would be taken for one that died mid-run.
        """
        if w not in self.alive:
            return
        self.alive.discard(w)
        self._drain(w)
        proc = self.procs[w]
        proc.join(timeout=5)
        if w not in self.finished:
            log.error("worker %d exited (code %s) without finishing", w, proc.exitcode)

    def _kill(self, w: int, sig: int) -> None:
        pid = self.procs[w].pid
        if pid is not None and self.procs[w].is_alive():
            os.kill(pid, sig)

    def wait_for(self, done: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Pump until `done()` or a signal or (optionally) a timeout; True when done."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not done():
            if self.signal_name or (deadline is not None and time.monotonic() > deadline):
                return False
            self.pump(0.25)
        return True

    def broadcast(self, msg: tuple[Any, ...]) -> None:
        for w in list(self.alive):
            try:
                self.conns[w].send(msg)
            except OSError:
                self._gone(w)

    def shutdown(self) -> None:
        """Stop every worker and collect their final messages (kill after a grace period)."""
        if not self.signal_name:
            self.broadcast(("stop",))
        deadline = time.monotonic() + _STOP_GRACE_S
        while self.alive and time.monotonic() < deadline:
            self.pump(0.25)
        for w in list(self.alive):
            log.error("worker %d did not stop in %.0f s; killing it", w, _STOP_GRACE_S)
            self._kill(w, signal.SIGKILL)
            self._gone(w)


def _prepare(
    settings: LoadSettings, model: str, plans: list[StagePlan]
) -> tuple[list[list[RequestSpec]], list[bytes]]:
    """Every request's body at exact prompt length (the expensive part, before t0).

    Returns the requests per stage, in send order, and the warm-up bodies.
    """
    config = settings.config
    if config.tokenizer.token_env:
        token = _secret(config.tokenizer.token_env, "tokenizer.token_env")
    else:
        token = os.environ.get("HF_TOKEN") or None
    tokenizer = load_tokenizer(settings.tokenizer_source, token, config.tokenizer.trust_remote_code)
    total = sum(len(p.offsets_ns) for p in plans)
    warm = config.load.warmup_requests
    rng = random.Random(config.load.seed)
    in_lengths = sample_lengths(config.data.input_distribution, total + warm, rng)
    out_lengths = sample_lengths(config.data.output_distribution, total + warm, rng)
    started = time.monotonic()
    builder = PromptBuilder(tokenizer, config.api.type, config.load.seed, settings.run_id)
    prompts = builder.build(in_lengths)
    log.info("built %d prompts in %.1f s", len(prompts), time.monotonic() - started)
    bodies = [request_body(config, model, p, n) for p, n in zip(prompts, out_lengths, strict=True)]
    per_stage: list[list[RequestSpec]] = []
    i = warm
    for plan in plans:
        stage = []
        for index, offset in enumerate(plan.offsets_ns):
            stage.append(
                RequestSpec(plan.stage, index, offset, bodies[i], in_lengths[i], out_lengths[i])
            )
            i += 1
        per_stage.append(stage)
    return per_stage, bodies[:warm]


def run(settings: LoadSettings) -> LoadResult:
    """Run the load; writes records.parquet and run.json into settings.out_dir."""
    config = settings.config
    _check_supported(config)
    out_dir = settings.out_dir
    parts_dir = out_dir / PARTS_DIR
    try:
        parts_dir.mkdir(parents=True, exist_ok=True)
        stale = next(parts_dir.iterdir(), None)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out_dir}: {exc.strerror}") from None
    if stale is not None:  # they would be merged into this run's records.parquet
        raise UsageError(
            f"--out {out_dir}: {parts_dir.name}/ still holds {stale.name} from an interrupted "
            f"run; recover it with `{merge_command(out_dir)}`, or use another --out"
        )
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    headers.update(config.api.headers or {})
    api_key = _secret(config.server.api_key_env, "server.api_key_env")
    log.info("API key: %s", "set" if api_key else "not set")
    _check_wire(config.server.base_url, headers, api_key)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    model = resolve_model(config, headers)
    plans = plan_stages(config.load.stages, config.load.type, config.load.seed)
    setup_cpu0 = process_cpu_s()
    per_stage, warmup = _prepare(settings, model, plans)
    total = sum(len(stage) for stage in per_stage)
    num_workers = config.load.num_workers
    path = "/v1/chat/completions" if config.api.type is APIType.chat else "/v1/completions"
    token_env = config.tokenizer.token_env or "HF_TOKEN"
    worker_specs = []
    for w in range(num_workers):
        stages = [
            (plan.duration_s, [stage[i] for i in worker_share(len(stage), num_workers, w)])
            for plan, stage in zip(plans, per_stage, strict=True)
        ]
        worker_specs.append(
            WorkerSpec(
                worker=w,
                run_id=settings.run_id,
                base_url=config.server.base_url.rstrip("/"),
                path=path,
                headers=headers,
                chat=config.api.type is APIType.chat,
                stages=stages,
                warmup=warmup[w::num_workers],
                request_timeout_s=config.load.request_timeout,
                drain_timeout_s=config.load.drain_timeout,
                max_concurrency=config.load.worker_max_concurrency,
                parts_dir=str(parts_dir),
                tokenizer_source=settings.tokenizer_source,
                tokenizer_token_env=token_env,
                tokenizer_trust_remote_code=bool(config.tokenizer.trust_remote_code),
                log_level=settings.log_level,
            )
        )
    ctx = mp.get_context("spawn")  # no inherited threads/locks (tokenizers, pytest)
    procs, conns = [], []
    for wspec in worker_specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main, args=(wspec, child), name=f"load-worker-{wspec.worker}", daemon=True
        )
        proc.start()
        child.close()
        procs.append(proc)
        conns.append(parent)
    progress = Progress(total)
    runner = _Runner(procs, conns, progress)
    old_handlers = {s: signal.signal(s, runner.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    stage_rows: list[dict[str, Any]] = []
    t0 = wall_start = 0
    unfinished = {
        "complete": False,
        "scheduled_requests": total,
        "recorded_requests": None,
        "missing_requests": None,
        "interrupted": None,
        "lost_workers": [],
        "incomplete_reasons": [
            "the load step has not finished: still running, or its main process was lost "
            f"(recover the records with `{merge_command(out_dir)}`)"
        ],
    }

    def mark_unfinished() -> None:
        """run.json as it stands mid-run; a failed write only loses the recovery aid."""
        try:
            _write_run_json(settings, model, t0, wall_start, stage_rows, 0.0, 0.0, unfinished)
        except OSError as exc:
            log.error("cannot write %s mid-run (%s)", out_dir / RUN_FILE, exc.strerror or exc)

    setup_cpu_s = 0.0
    main_cpu0 = process_cpu_s()
    try:
        runner.wait_for(lambda: runner.alive <= runner.ready)
        if runner.warmup_errors:
            log.warning("%d warm-up requests failed", runner.warmup_errors)
        setup_cpu_s = process_cpu_s() - setup_cpu0
        main_cpu0 = process_cpu_s()
        mono, wall = time.monotonic_ns(), time.time_ns()
        t0, wall_start = mono + _LEAD_NS, wall + _LEAD_NS
        if not runner.alive:
            raise BenchError("every load worker exited before the run started; see the log above")
        log.info(
            "run %s: %d requests in %d stage(s), %d workers, t0 wall %s",
            settings.run_id,
            total,
            len(plans),
            num_workers,
            _iso(wall_start),
        )
        for plan in plans:
            if runner.signal_name:
                break
            start = t0 if plan.stage == 0 else time.monotonic_ns() + _LEAD_NS
            runner.stage_done.clear()
            runner.broadcast(("stage", plan.stage, start, t0, wall_start))
            row: dict[str, Any] = {
                "stage": plan.stage,
                "rate": plan.rate,
                "duration_s": plan.duration_s,
                "start_ns": start - t0,
                "send_end_ns": start - t0 + plan.window_ns,
                "end_ns": None,
            }
            stage_rows.append(row)
            mark_unfinished()  # after the broadcast: never delays a stage's start
            finished = runner.wait_for(lambda: runner.alive <= set(runner.stage_done))
            ends = list(runner.stage_done.values())
            row["end_ns"] = (max(ends) if finished and ends else time.monotonic_ns()) - t0
            log.info("stage %d done: %.1f s", plan.stage, (row["end_ns"] - row["start_ns"]) / 1e9)
        runner.shutdown()
        progress.show(time.monotonic(), force=True)
        progress.close()
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=5)
    client_cpu_s = sum(cpu for cpu, _ in runner.finished.values()) + (process_cpu_s() - main_cpu0)
    lost_workers = [w for w in range(num_workers) if w not in runner.finished]
    reasons = [f"interrupted by {runner.signal_name}"] if runner.signal_name else []
    reasons += [
        f"worker {w} exited (code {procs[w].exitcode}) without finishing: its unsent requests "
        "and unflushed records are missing"
        for w in lost_workers
    ]
    reasons += _keep_unwritten(runner.unwritten, parts_dir)
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
        "interrupted": runner.signal_name,
        "lost_workers": lost_workers,
        "incomplete_reasons": reasons,
    }
    try:
        _write_run_json(
            settings, model, t0, wall_start, stage_rows, client_cpu_s, setup_cpu_s, completeness
        )
    except OSError as exc:
        raise BenchError(
            f"cannot write {out_dir / RUN_FILE} ({exc.strerror or exc}); "
            f"{rows} of {total} scheduled requests are recorded in {out_dir}"
        ) from None
    if merge_error is not None:
        raise merge_error
    table = pq.read_table(out_dir / RECORDS_FILE)
    summary = summarize(table, stage_rows, client_cpu_s)
    text = format_summary(summary)
    return LoadResult(rows, summary.failed, text, total, tuple(reasons))


def _keep_unwritten(
    unwritten: list[tuple[int, pa.Table, str | None]], parts_dir: Path
) -> list[str]:
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


def _iso(wall_ns: int) -> str:
    return (
        datetime.fromtimestamp(wall_ns / 1e9, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _tool_version() -> str:
    try:
        return metadata.version("llm-baseline-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_run_json(
    settings: LoadSettings,
    model: str,
    t0: int,
    wall_start: int,
    stages: list[dict[str, Any]],
    client_cpu_s: float,
    setup_cpu_s: float,
    completeness: dict[str, Any],
) -> None:
    """run.json, atomically (steps/CONTRACTS.md); `completeness` says what the records hold."""
    config = settings.config
    doc = {
        "run_id": settings.run_id,
        "scenario": settings.scenario,
        "model": model,
        "base_url": config.server.base_url,
        "api_type": config.api.type.value,
        "load_type": config.load.type.value,
        "started_at": _iso(wall_start),
        "wall_start_ns": wall_start,
        "num_workers": config.load.num_workers,
        "tool_version": _tool_version(),
        "stages": stages,
        "config": redact_tree(config.model_dump(mode="json")),  # api.headers may hold a key
        "client_cpu_s": round(client_cpu_s, 4),
        "setup_cpu_s": round(setup_cpu_s, 4),
        **completeness,
    }
    write_run_file(settings.out_dir, doc)


def write_run_file(out_dir: Path, doc: dict[str, Any]) -> None:
    """Write `out_dir`/run.json atomically (temp name, then rename): never half a file."""
    path = out_dir / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
