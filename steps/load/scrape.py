"""The server's `/metrics`, sampled during the load by a process of its own.

Why a process: the sampler must cost the sends nothing. The workers' event loops never see it,
and the main process, which paces the stages, keeps its GIL: parsing a vLLM page (tens of KB,
hundreds of samples, pure-Python `prometheus_client` parser) takes milliseconds, and the
scraper's CPU is counted on its own (run.json `server_metrics.cpu_s`), never in `client_cpu_s`.

What it scrapes (`ScrapeSpec.discovery`):
- `pods`: the Ready pods matching `target_labels` in `target_namespace`, listed from the
  Kubernetes API (steps/kube_pods.py, the readiness step's listing; RBAC: `list` pods), each at
  `scheme://<pod IP>:<metrics port>/metrics`. Behind a Service `/metrics` answers from one pod
  at a time, so only this sees every replica. The list is refreshed every `RELIST_S`; a pod
  that left is no longer scraped, a new one joins.
- `url`: the base URL's `/metrics` (one process, or outside a cluster).
- `auto`: `pods` in a cluster (a mounted service account and target labels), else `url`.

Timing: one round as soon as the run starts (before t0: the counters before the first send),
then rounds at `t0 + k * interval` on `time.monotonic_ns()` (the records' clock); every
target is scraped once per round, concurrently (a thread each, so one slow pod delays nobody);
a round that finds the previous one still running is skipped, not queued. Each scrape is one
new connection (steps/http_oneshot.py: one deadline over DNS, connect, TLS, head and body, and
a byte cap), so a slow or endless page costs at most `timeout_s` and `max_bytes`. Every page is
parsed with `prometheus_client`'s parser; each sample is a row (steps/server_metrics.py), plus
`up` (1 parsed, 0 not) and `scrape_duration_seconds` per target and round. A target that stops
answering is rows with `up` 0: a gap in its series, never a failed run.

Protocol (tuples over a `multiprocessing` pipe):
    scraper -> main  ("ready",)   # warmed up: its first round will not be late
    main -> scraper  ("start", t0_ns, wall_start_ns) | ("stop",)
    scraper -> main  ("scraped", stats)   # stats: the run.json `server_metrics` object
Rows are written as Parquet row groups while it runs (`FLUSH_ROWS`) to a temporary name,
renamed to server_metrics.parquet when it stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import BenchError, UsageError
from steps.http_oneshot import OneShotClient
from steps.kube_pods import KubeCredentials, find_credentials, matching_pods
from steps.load.worker import process_cpu_s
from steps.server_metrics import (
    SCRAPE_DURATION_METRIC,
    SERVER_METRICS_SCHEMA,
    UP_METRIC,
)
from steps.tls import client_ssl_context

__all__ = [
    "DISCOVERY_MODES",
    "MAX_INTERVAL_S",
    "MAX_SCRAPE_BYTES",
    "STOP_WAIT_S",
    "MetricsSettings",
    "Sampler",
    "ScrapeSpec",
    "Target",
    "parse_page",
    "scrape_main",
]

log = logging.getLogger(__name__)

DISCOVERY_MODES = ("auto", "pods", "url")
#: Longest interval between scrapes (`--server-metrics-interval`): a stage is seconds long.
MAX_INTERVAL_S = 60.0
#: Largest /metrics page read: vLLM's is ~30-100 KB (more with many LoRA adapters or engines).
MAX_SCRAPE_BYTES = 8 << 20
#: Longest a scrape may take, whatever the interval (a slow page is a gap, not a stall).
MAX_SCRAPE_TIMEOUT_S = 5.0
#: How often the pod list is refreshed (pods restarting or scaling).
RELIST_S = 30.0
#: Wall-clock limit on one pod listing.
LIST_DEADLINE_S = 10.0
#: Rows held before a row group is written (~100 B each in memory as Python objects).
FLUSH_ROWS = 200_000
_SCRAPE_THREADS = 32


@dataclass(frozen=True)
class MetricsSettings:
    """The load step's server-metrics knobs (flags `--server-metrics-interval`,
    `--metrics-discovery`, `--metrics-port`, `--target-labels`, `--target-namespace`)."""

    interval_s: float = 1.0  # 0 = off
    discovery: str = "auto"
    metrics_port: int | None = None
    target_labels: dict[str, str] = field(default_factory=dict)
    target_namespace: str = "default"

    def spec(
        self, base_url: str, headers: dict[str, str], out_path: Path, log_level: str
    ) -> ScrapeSpec | None:
        """The scraper process's spec; None when sampling is off. Refuses `pods` discovery
        without credentials here, before anything starts."""
        if self.interval_s <= 0:
            return None
        spec = ScrapeSpec(
            interval_s=self.interval_s,
            base_url=base_url,
            headers=headers,
            out_path=str(out_path),
            discovery=self.discovery,
            target_labels=dict(self.target_labels),
            target_namespace=self.target_namespace,
            metrics_port=self.metrics_port,
            log_level=log_level,
        )
        _pods_wanted(spec)
        return spec


@dataclass(frozen=True)
class ScrapeSpec:
    """What the scraper process needs, as plain data (it crosses a process boundary)."""

    interval_s: float
    base_url: str
    headers: dict[str, str]
    out_path: str
    discovery: str = "auto"
    target_labels: dict[str, str] = field(default_factory=dict)
    target_namespace: str = "default"
    metrics_port: int | None = None  # None: the base URL's port
    max_bytes: int = MAX_SCRAPE_BYTES
    log_level: str = "INFO"

    @property
    def timeout_s(self) -> float:
        """One scrape's wall-clock limit: the interval, at most MAX_SCRAPE_TIMEOUT_S."""
        return min(max(self.interval_s, 0.5), MAX_SCRAPE_TIMEOUT_S)


@dataclass(frozen=True)
class Target:
    """One `/metrics` endpoint: the name its rows carry and its URL root."""

    name: str
    root: str


def base_target(spec: ScrapeSpec) -> Target:
    """The base URL itself (with the metrics port when it differs), named by host:port."""
    parts = urlsplit(spec.base_url)
    port = spec.metrics_port or parts.port
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return Target(netloc, urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")))


def pod_targets(spec: ScrapeSpec, creds: KubeCredentials) -> list[Target]:
    """The Ready matching pods with an IP, each at its IP and the metrics port."""
    parts = urlsplit(spec.base_url)
    port = spec.metrics_port or parts.port or (443 if parts.scheme == "https" else 80)
    pods = matching_pods(creds, spec.target_namespace, spec.target_labels, LIST_DEADLINE_S)
    targets = []
    for pod in pods:
        if pod.ready and pod.ip:
            host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
            targets.append(Target(pod.name, f"{parts.scheme}://{host}:{port}"))
    return sorted(targets, key=lambda t: t.name)


def _pods_wanted(spec: ScrapeSpec) -> KubeCredentials | None:
    """Credentials to list pods with, when this run scrapes pods; None: the base URL."""
    if spec.discovery == "url":
        return None
    creds = find_credentials(os.environ, Path.home())
    if spec.discovery == "pods":
        if creds is None:
            raise UsageError(
                "--metrics-discovery pods: no Kubernetes credentials (service account or "
                "kubeconfig) to list the model pods with"
            )
        return creds
    # auto: in a cluster with labels to look for
    if creds is not None and creds.in_cluster and spec.target_labels:
        return creds
    return None


def parse_page(text: str) -> list[tuple[str, str, str, str, float]]:
    """(family, sample name, labels as sorted JSON, type, value) per sample of an exposition
    page; ValueError when the page is not valid text format (nothing of it is kept)."""
    from prometheus_client.parser import text_string_to_metric_families

    rows = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = json.dumps(sample.labels, sort_keys=True, separators=(",", ":"))
                rows.append((family.name, sample.name, labels, family.type, float(sample.value)))
    except Exception as exc:  # ValueError mostly; IndexError, KeyError, TypeError on some junk
        raise ValueError(f"malformed exposition text: {_one_line(exc)}") from None
    return rows


class _Columns:
    """Rows in column lists, written as a Parquet row group every FLUSH_ROWS rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self._writer: pq.ParquetWriter | None = None
        self._cols: dict[str, list[Any]] = {f.name: [] for f in SERVER_METRICS_SCHEMA}
        self.rows = 0

    def add(
        self, round_: int, times: tuple[int, int, int], pod: str, sample: tuple[Any, ...]
    ) -> None:
        """One row: `times` = (t_ns, wall_ns, t_end_ns), `sample` as parse_page gives it."""
        family, metric, labels, kind, value = sample
        cols = self._cols
        cols["round"].append(round_)
        cols["t_ns"].append(times[0])
        cols["wall_ns"].append(times[1])
        cols["t_end_ns"].append(times[2])
        cols["pod"].append(pod)
        cols["family"].append(family)
        cols["metric"].append(metric)
        cols["labels"].append(labels)
        cols["value"].append(value)
        cols["type"].append(kind)
        self.rows += 1
        if len(cols["round"]) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._cols["round"] and self._writer is not None:
            return
        table = pa.table(self._cols, schema=SERVER_METRICS_SCHEMA)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, SERVER_METRICS_SCHEMA)
        self._writer.write_table(table)
        for values in self._cols.values():
            values.clear()

    def close(self) -> None:
        """Write what is held, close the file and give it its final name."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
            os.replace(self.tmp, self.path)


@dataclass
class _Stats:
    """What the run.json `server_metrics` object says about the sampling."""

    rounds: int = 0
    skipped_rounds: int = 0
    scrapes: int = 0
    failed_scrapes: int = 0
    targets: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # target -> its first error


class _Scraper:
    """The rounds, their targets and their rows."""

    def __init__(self, spec: ScrapeSpec) -> None:
        self.spec = spec
        self.t0 = self.wall_shift = 0
        self.columns = _Columns(Path(spec.out_path))
        self.stats = _Stats()
        self.pool = ThreadPoolExecutor(_SCRAPE_THREADS, thread_name_prefix="scrape")
        self.headers = {"Accept": "text/plain;version=0.0.4", **spec.headers}
        self.ssl_context = client_ssl_context()
        self.creds = _pods_wanted(spec)
        self.targets: list[Target] = [] if self.creds is not None else [base_target(spec)]
        self.listed_at = float("-inf")
        self.cpu0 = 0.0

    def warm_up(self) -> None:
        """Before t0: list the pods and scrape each once, unrecorded, so the first recorded
        round pays no start-up (imports, first connection) and ends before t0."""
        self.refresh_targets()
        list(self.pool.map(self._scrape, self.targets))

    def begin(self, t0_ns: int, wall_start_ns: int) -> None:
        """The run's clock: ns since `t0_ns` (monotonic), epoch = monotonic + shift."""
        self.t0 = t0_ns
        self.wall_shift = wall_start_ns - t0_ns
        self.cpu0 = process_cpu_s()

    def refresh_targets(self) -> None:
        """Re-list the pods every RELIST_S; a failed listing keeps the previous targets."""
        if self.creds is None or time.monotonic() - self.listed_at < RELIST_S:
            return
        self.listed_at = time.monotonic()
        try:
            targets = pod_targets(self.spec, self.creds)
        except BenchError as exc:
            log.warning("server metrics: %s; keeping %d known pod(s)", exc, len(self.targets))
            return
        if [t.name for t in targets] != [t.name for t in self.targets]:
            log.info(
                "server metrics: scraping %d pod(s): %s",
                len(targets),
                ", ".join(t.name for t in targets) or "none Ready",
            )
        self.targets = targets

    def round(self, index: int) -> None:
        """Scrape every target once, concurrently; each scrape bounded on its own."""
        self.refresh_targets()
        results = list(self.pool.map(self._scrape, self.targets))
        for target, (t_ns, end_ns, samples, error) in zip(self.targets, results, strict=True):
            times = (t_ns - self.t0, t_ns + self.wall_shift, end_ns - self.t0)
            duration_s = (end_ns - t_ns) / 1e9
            self.stats.targets.add(target.name)
            self.stats.scrapes += 1
            for sample in samples:
                self.columns.add(index, times, target.name, sample)
            up = (UP_METRIC, UP_METRIC, "{}", "gauge", 0.0 if error else 1.0)
            took = (SCRAPE_DURATION_METRIC, SCRAPE_DURATION_METRIC, "{}", "gauge", duration_s)
            for synthetic in (up, took):
                self.columns.add(index, times, target.name, synthetic)
            if error:
                self.stats.failed_scrapes += 1
                if target.name not in self.stats.errors:
                    self.stats.errors[target.name] = error
                    log.warning(
                        "server metrics: %s: %s (a gap in its series; logged once)",
                        target.name,
                        error,
                    )
        self.stats.rounds += 1

    def _scrape(self, target: Target) -> tuple[int, int, list[Any], str | None]:
        """(send time, response complete time, samples, error or None) of one scrape."""
        client = OneShotClient(target.root, self.headers, self.ssl_context)
        t_ns = end_ns = time.monotonic_ns()
        try:
            reply = client.request(
                "GET",
                "/metrics",
                deadline_s=self.spec.timeout_s,
                max_body_bytes=self.spec.max_bytes,
            )
            end_ns = time.monotonic_ns()
            if not reply.is_success:
                raise ValueError(f"HTTP {reply.status_code}")
            samples = parse_page(reply.content.decode("utf-8", errors="replace"))
        except Exception as exc:  # limits, malformed pages, any transport error: a gap
            return t_ns, max(end_ns, time.monotonic_ns()), [], _one_line(exc)
        return t_ns, end_ns, samples, None

    def close(self) -> dict[str, Any]:
        """Write the file; the run.json `server_metrics` object."""
        self.pool.shutdown(wait=True)
        self.columns.close()
        stats = self.stats
        return {
            "file": self.columns.path.name,
            "interval_s": self.spec.interval_s,
            "discovery": "pods" if self.creds is not None else "url",
            "targets": sorted(stats.targets),
            "rounds": stats.rounds,
            "skipped_rounds": stats.skipped_rounds,
            "scrapes": stats.scrapes,
            "failed_scrapes": stats.failed_scrapes,
            "rows": self.columns.rows,
            "errors": stats.errors,
            # The scraper's own CPU since t0, not counted in run.json client_cpu_s.
            "cpu_s": round(process_cpu_s() - self.cpu0, 4),
        }


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _wait_message(conn: Connection, timeout_s: float | None) -> tuple[Any, ...] | None:
    """The next message within `timeout_s` (None: none came); a closed pipe reads as stop."""
    try:
        if conn.poll(timeout_s):
            msg: tuple[Any, ...] = conn.recv()
            return msg
    except (EOFError, OSError):
        return ("stop",)
    return None


def run_rounds(scraper: _Scraper, conn: Connection, t0_ns: int, wall_start_ns: int) -> None:
    """Round 0 at once (before t0: the counters' values before the first send), then round
    k + 1 at t0 + k * interval until "stop", then one last round."""
    scraper.begin(t0_ns, wall_start_ns)
    interval_ns = int(scraper.spec.interval_s * 1e9)
    scraper.round(0)
    k = 0
    while True:
        due = t0_ns + k * interval_ns
        wait_s = max(due - time.monotonic_ns(), 0) / 1e9
        if _wait_message(conn, wait_s) is not None:
            break  # stop: the last round below
        scraper.round(k + 1)
        # The next round due after now: a round that overran skips the ones it covered.
        late = (time.monotonic_ns() - t0_ns) // interval_ns + 1
        scraper.stats.skipped_rounds += max(late - k - 1, 0)
        k = max(late, k + 1)
    scraper.round(k + 1)  # the counters' values at the end of the run


def scrape_main(spec: ScrapeSpec, conn: Connection) -> None:
    """Process entry point: wait for t0, scrape until stopped, report the stats."""
    from steps.cli import configure_logging

    configure_logging("load", spec.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per scrape otherwise
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides, then says stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    scraper = _Scraper(spec)
    try:
        scraper.warm_up()
        with contextlib.suppress(OSError):
            conn.send(("ready",))
        msg = _wait_message(conn, None)
        if msg is None or msg[0] != "start":
            return
        run_rounds(scraper, conn, msg[1], msg[2])
        stats = scraper.close()
    except (BenchError, OSError, pa.ArrowException) as exc:
        log.error("server metrics: %s", _one_line(exc))
        stats = {"error": _one_line(exc)}
    finally:
        scraper.pool.shutdown(wait=False)
    with contextlib.suppress(OSError):
        conn.send(("scraped", stats))


#: How long the main process waits for the scraper's warm-up (imports, pod list, one scrape).
READY_WAIT_S = LIST_DEADLINE_S + MAX_SCRAPE_TIMEOUT_S + 15.0
#: How long the main process waits for the scraper's last round and file after "stop".
STOP_WAIT_S = MAX_SCRAPE_TIMEOUT_S + 30.0


class Sampler:
    """The main process's handle on the scraper process (steps.load.run drives it)."""

    def __init__(self, spec: ScrapeSpec | None) -> None:
        self.spec = spec
        self._proc: Any = None
        self._conn: Connection | None = None
        if spec is None:
            return
        ctx = mp.get_context("spawn")  # no inherited threads/locks, as the workers
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=scrape_main, args=(spec, child), name="load-scraper", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent

    def wait_ready(self, timeout_s: float = READY_WAIT_S) -> None:
        """Wait (bounded) until the scraper has warmed up, so round 0 comes before t0; the
        workers start up meanwhile, so this rarely waits at all."""
        if self._conn is None:
            return
        with contextlib.suppress(OSError, EOFError):
            if self._conn.poll(timeout_s) and self._conn.recv()[0] == "ready":
                return
        log.warning(
            "server metrics: the scraper was not ready within %.0f s; its first rounds may "
            "come late",
            timeout_s,
        )

    def start(self, t0_ns: int, wall_start_ns: int) -> None:
        """Begin the rounds at t0 (the scraper is already up: no start-up on the clock)."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("start", t0_ns, wall_start_ns))

    def stop(self) -> dict[str, Any] | None:
        """Last round, file written, process joined; the run.json `server_metrics` object
        (None when sampling was off)."""
        if self._conn is None or self.spec is None:
            return None
        stats: dict[str, Any] = {"error": "the scraper process exited without its stats"}
        deadline = time.monotonic() + STOP_WAIT_S
        with contextlib.suppress(OSError, EOFError):
            self._conn.send(("stop",))
            # A "ready" never waited for (sampling started without wait_ready) may come first.
            while self._conn.poll(max(deadline - time.monotonic(), 0)):
                msg = self._conn.recv()
                if msg[0] == "scraped":
                    stats = msg[1]
                    break
        self.close()
        if "error" in stats:
            log.error("server metrics: %s", stats["error"])
        else:
            log.info(
                "server metrics: %d rounds over %d target(s), %d of %d scrapes failed, %d rows",
                stats["rounds"],
                len(stats["targets"]),
                stats["failed_scrapes"],
                stats["scrapes"],
                stats["rows"],
            )
        return stats

    def close(self) -> None:
        """No scraper outlives the run: join it, or kill it."""
        if self._proc is None:
            return
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._proc = None
        self._conn = None
