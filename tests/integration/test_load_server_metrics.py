"""The load step's server-metrics sampler against real servers: the simulator's engine state as
ground truth, pods listed from a (fake) Kubernetes API with one that stops answering, and
hostile /metrics pages (slow, endless, malformed) under real limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.scrape import Sampler, ScrapeSpec
from steps.server_metrics import SERVER_METRICS_FILE
from tests.fakes.hostile import HostileServer, endless_body, hang, raw, respond
from tests.fakes.kube_api import FakeKubeAPI, FakePod, fake_kube_api, write_kubeconfig
from tests.fixtures.simulator import SimulatorHandle
from tests.helpers.load_run import run_load

StartSimulator = Any
S = 1_000_000_000
_LOCK = threading.Lock()


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / SERVER_METRICS_FILE)


def _summary(out: Path, records: Path) -> dict[str, Any]:
    assert aggregate_main(["--records", str(records), "--out", str(out)]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def test_simulator_queueing_shows_as_waiting_and_the_overhead_check_holds(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    """--max-num-seqs 2 at 8 requests/s of ~0.7 s each: the queue must show."""
    sim: SimulatorHandle = simulator_factory(
        "--max-num-seqs", "2", "--ttft-ms", "50", "--itl-ms", "20",
        "--tokenizer", str(qwen_tokenizer_dir), "--kv-cache-tokens", "4096",
    )  # fmt: skip
    out = tmp_path / "load"
    code, rows, run_json = run_load(
        out, sim.base_url, qwen_tokenizer_dir, "--rate", "8", "--duration", "3",
        "--num-workers", "2", "--output-tokens", "32", "--server-metrics-interval", "0.5",
    )  # fmt: skip
    assert code == 0
    stats = run_json["server_metrics"]
    assert stats["failed_scrapes"] == 0 and stats["targets"] == [sim.base_url.split("//")[1]]
    data = _metrics(out)
    by_metric = {m: d for m, d in data.groupby("metric", observed=True)}
    running = by_metric["vllm:num_requests_running"]["value"]
    waiting = by_metric["vllm:num_requests_waiting"]["value"]
    assert running.max() == 2  # never more than --max-num-seqs
    assert waiting.max() >= 5  # 24 requests of ~0.7 s through 2 slots
    kv = by_metric["vllm:kv_cache_usage_perc"]["value"]
    # Two admitted sequences hold at most 2 x (512 + 32) tokens of 4096.
    assert 0 < kv.max() <= 2 * (512 + 32) / 4096
    # On the records' clock: round 0 before t0, then every 0.5 s; wall clock alongside.
    rounds = data.drop_duplicates("round").sort_values("round")
    assert rounds["t_ns"].iloc[0] < 0
    gaps = rounds["t_ns"].diff().dropna().iloc[1:-1] / S
    assert gaps.between(0.4, 0.6).all(), gaps.tolist()
    shift = rounds["wall_ns"] - rounds["t_ns"]
    assert (shift == run_json["wall_start_ns"]).all()

    summary = _summary(tmp_path / "summary", out)
    server = summary["overall"]["server"]
    assert server["running"]["max"] == 2 and server["waiting"]["max"] >= 5
    assert server["preemptions"] == 0 and server["prefix_cache_hit_rate"] == 0
    for metric in ("ttft", "e2e"):
        check = server["overhead"][metric]
        assert check["server_count"] == len(rows) == check["client_count"]
        assert check["consistent"] is True, check
        assert check["overhead_ms"] > -1.0  # the client's view includes the server's
    assert server["latency_ms"]["ttft"]["p99"] > 1000  # queued requests wait for a slot


class _PodMetrics(BaseHTTPRequestHandler):
    """A second 'pod': answers /metrics 4 times (the scraper's warm-up and 3 rounds), then
    closes every connection without a word, as a pod that went away behind its IP."""

    page = b'# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 7\n'
    answers = 4

    def do_GET(self) -> None:
        with _LOCK:
            type(self).answers -= 1
            if type(self).answers < 0:
                self.close_connection = True
                return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _pod_b(port: int) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.2", port), _PodMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_every_ready_pod_is_scraped_and_one_that_stops_answering_is_a_gap(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim: SimulatorHandle = simulator_factory("--tokenizer", str(qwen_tokenizer_dir))
    port = int(sim.base_url.rsplit(":", 1)[1])
    labels = {"app": "vllm"}
    state = FakeKubeAPI(
        pods=[
            FakePod("vllm-a", "models", labels, ip="127.0.0.1"),
            FakePod("vllm-b", "models", labels, ip="127.0.0.2"),
            FakePod("vllm-c", "models", labels, ready=False, ip="127.0.0.3"),
        ]
    )
    out = tmp_path / "load"
    with fake_kube_api(state) as api, _pod_b(port):
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url)))
        code, rows, run_json = run_load(
            out, sim.base_url, qwen_tokenizer_dir, "--rate", "4", "--duration", "3",
            "--num-workers", "1", "--output-tokens", "16", "--metrics-discovery", "pods",
            "--target-labels", "app=vllm", "--target-namespace", "models",
            "--metrics-port", str(port), "--server-metrics-interval", "0.5",
        )  # fmt: skip
    assert code == 0 and {r["status"] for r in rows} == {"ok"}  # a gap never fails the run
    assert state.requests[0].query["labelSelector"] == ["app=vllm"]
    stats = run_json["server_metrics"]
    assert stats["discovery"] == "pods" and stats["targets"] == ["vllm-a", "vllm-b"]
    up = _metrics(out).query("metric == 'up'")
    up_b = up[up["pod"] == "vllm-b"].sort_values("round")["value"].tolist()
    assert up_b[:3] == [1, 1, 1] and up_b[-1] == 0, up_b
    assert 0 < stats["failed_scrapes"] == up_b.count(0)
    assert set(up[up["pod"] == "vllm-a"]["value"]) == {1.0}
    running = _metrics(out).query("metric == 'vllm:num_requests_running' and pod == 'vllm-b'")
    assert set(running["value"]) == {7.0}


def _sample(server_url: str, tmp_path: Path, seconds: float, **spec: Any) -> dict[str, Any]:
    """The real scraper process for `seconds` against `server_url`; its stats."""
    tmp_path.mkdir(exist_ok=True)
    sampler = Sampler(
        ScrapeSpec(
            interval_s=spec.pop("interval_s", 0.5),
            base_url=server_url,
            headers={},
            out_path=str(tmp_path / SERVER_METRICS_FILE),
            discovery="url",
            **spec,
        )
    )
    try:
        sampler.wait_ready()
        now = time.monotonic_ns()
        sampler.start(now, time.time_ns())
        time.sleep(seconds)
        stopping = time.monotonic()
        stats = sampler.stop()
        stats["stop_s"] = time.monotonic() - stopping
    finally:
        sampler.close()
    assert stats is not None
    return stats


def test_a_slow_or_endless_metrics_page_costs_at_most_its_time_and_bytes(
    hostile_server: Any, tmp_path: Path
) -> None:
    endless: HostileServer = hostile_server([endless_body()])
    started = time.monotonic()
    stats = _sample(endless.url, tmp_path / "endless", 1.6, max_bytes=1 << 20)
    assert stats["scrapes"] >= 3 and stats["failed_scrapes"] == stats["scrapes"]
    assert "BodyTooLarge" in stats["errors"][endless.url.split("//")[1]]
    # Each scrape read about the cap and closed: the socket buffers hold the rest.
    assert all(c.bytes_sent < (1 << 20) + (8 << 20) for c in endless.connections)
    assert time.monotonic() - started < 10

    silent: HostileServer = hostile_server([hang()])
    stats = _sample(silent.url, tmp_path / "silent", 1.0, interval_s=0.5)
    assert stats["failed_scrapes"] == stats["scrapes"] >= 2
    assert "DeadlineExceeded" in stats["errors"][silent.url.split("//")[1]]
    # Stop waits for the round in progress and one last round, each at most timeout_s (0.5 s).
    assert stats["stop_s"] < 2 * 0.5 + 1.0
    durations = pd.read_parquet(tmp_path / "silent" / SERVER_METRICS_FILE).query(
        "metric == 'scrape_duration_seconds'"
    )["value"]
    assert durations.max() < 0.5 + 0.3


def test_malformed_pages_and_errors_are_gaps_and_good_pages_between_them_are_kept(
    hostile_server: Any, tmp_path: Path
) -> None:
    good = b"# TYPE g gauge\ng 1\n"
    bad = b'# TYPE g gauge\ng{a="unterminated} 1\n'

    def page(body: bytes) -> Any:
        return raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body)
        )

    script = [page(good), page(bad), respond(500, b"oops"), page(good)]
    server: HostileServer = hostile_server(script)
    stats = _sample(server.url, tmp_path, 1.3, interval_s=0.4)
    rows = pd.read_parquet(tmp_path / SERVER_METRICS_FILE)
    up = rows.query("metric == 'up'").sort_values("round")["value"].tolist()
    # Warm-up (unrecorded) took the first good page; then bad, 500, then good ones.
    assert up[:3] == [0.0, 0.0, 1.0], up
    assert set(rows.query("metric == 'g'")["value"]) == {1.0}
    assert "malformed exposition text" in next(iter(stats["errors"].values()))
