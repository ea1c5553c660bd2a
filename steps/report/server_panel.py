"""The server's view beside the client's: one figure on a shared time axis, and the tables.

When TTFT moves, the first question is why: was the KV cache full, were requests queueing?
`render_server_panel` draws client TTFT/e2e, schedule delay, the server's KV-cache usage and its
running/waiting requests over the same seconds (the load step's clock: server samples and
records share it), with the stage starts marked. `server_blocks` turns summary.json `server`
into a table per stage beside the client's, and the client-vs-server overhead check: a client
faster than the server in some bucket is shown as an ERROR (one of the two mis-measures; it
does not fail the verdict, as a scrape gap at a window's end can cause it too).

The series come from the first records shard's server_metrics.parquet (every shard scraped the
same servers); a run without one gets no figure and no server tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from steps.records import SATURATION_DELAY_MS
from steps.report.plots import Plot, plot_timeline, save_figure
from steps.report.render import Block, Heading, Image, Paragraph, Table, fmt
from steps.report.samples import Samples
from steps.server_metrics import SERVER_METRICS_FILE
from steps.server_series import ServerSamples, gauge_series, read_server_metrics
from steps.summary_model import Group, ServerGroup, Summary

__all__ = ["PANEL_FILE", "read_panel_samples", "render_server_panel", "server_blocks"]

PANEL_FILE = "server_metrics.png"
_NS_PER_S = 1e9


def read_panel_samples(records: Sequence[Path]) -> ServerSamples | None:
    """The first shard's server metrics (None when it has none)."""
    path = records[0].parent / SERVER_METRICS_FILE if records else None
    if path is None or not path.is_file():
        return None
    return read_server_metrics(path)


def _gauges(ax: Axes, server: ServerSamples, origin_s: float) -> None:
    for name, how, label in (("running", "sum", "running"), ("waiting", "sum", "waiting")):
        series = gauge_series(server.shared(name), how)
        if len(series):
            ax.step(
                series["t_ns"] / _NS_PER_S - origin_s, series["value"], where="post", label=label
            )
    ax.set_ylabel("requests (all pods)")
    ax.legend(loc="upper right", fontsize="small")


def _kv(ax: Axes, server: ServerSamples, origin_s: float) -> None:
    series = gauge_series(server.shared("kv_cache_usage"), "mean")
    if len(series):
        t = series["t_ns"] / _NS_PER_S - origin_s
        ax.plot(t, series["value"] * 100, label="mean over pods")
        ax.plot(t, series["max"] * 100, linestyle=":", label="max")
        ax.legend(loc="upper right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "server exports no KV-cache usage", ha="center", transform=ax.transAxes)
    ax.set_ylabel("KV cache %")


def render_server_panel(
    samples: Samples, server: ServerSamples | None, summary: Summary, out_dir: Path
) -> Plot | None:
    """server_metrics.png (None without server samples)."""
    if server is None:
        return None
    fig = Figure(figsize=(10, 9), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    plot_timeline(axes[0], samples.sent_s, samples.ttft_ms, "TTFT")
    plot_timeline(axes[0], samples.sent_s, samples.e2e_ms, "e2e")
    plot_timeline(axes[1], samples.delay_sent_s, samples.schedule_delay_ms, "schedule delay")
    axes[1].axhline(SATURATION_DELAY_MS, color="red", linestyle="--", linewidth=0.8)
    _kv(axes[2], server, samples.origin_s)
    _gauges(axes[3], server, samples.origin_s)
    for stage in summary.run.stages or []:
        start = stage.get("start_ns")
        if isinstance(start, int):
            for ax in axes:
                ax.axvline(start / _NS_PER_S - samples.origin_s, color="grey", linewidth=0.8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_xlabel("")
    axes[-1].set_xlabel("time since first send (s); grey lines: stage starts")
    fig.suptitle("Client latency and the server's state over time")
    save_figure(fig, out_dir, PANEL_FILE)
    return Plot(PANEL_FILE, "Client latency beside the server's metrics")


def _server_row(label: str, s: ServerGroup) -> tuple[str, ...]:
    ttft, e2e = s.latency_ms.get("ttft"), s.latency_ms.get("e2e")
    return (
        label,
        f"{s.scrapes - s.failed_scrapes}/{s.scrapes}",
        fmt(None if s.kv_cache_usage.mean is None else s.kv_cache_usage.mean * 100, 1),
        fmt(None if s.kv_cache_usage.max is None else s.kv_cache_usage.max * 100, 1),
        f"{fmt(s.running.mean, 1)} / {fmt(s.running.max, 0)}",
        f"{fmt(s.waiting.mean, 1)} / {fmt(s.waiting.max, 0)} / {fmt(s.waiting.p99, 1)}",
        fmt(s.preemptions, 0),
        fmt(None if s.prefix_cache_hit_rate is None else s.prefix_cache_hit_rate * 100, 1),
        fmt(s.prompt_tokens_per_s, 1),
        fmt(s.generation_tokens_per_s, 1),
        f"{fmt(ttft.p50 if ttft else None)} / {fmt(ttft.p99 if ttft else None)}",
        f"{fmt(e2e.p50 if e2e else None)} / {fmt(e2e.p99 if e2e else None)}",
    )


def _groups(summary: Summary) -> list[tuple[str, Group]]:
    groups: list[tuple[str, Group]] = [(f"stage {s.stage}", s) for s in summary.stages]
    if len(groups) != 1:
        groups.append(("all", summary.overall))
    return groups


def _overhead_rows(groups: list[tuple[str, Group]]) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    errors: list[str] = []
    for label, group in groups:
        if group.server is None:
            continue
        for metric, check in group.server.overhead.items():
            if check is None:
                continue
            faster = ", ".join(fmt(b, 0) for b in check.client_faster_buckets) or "none"
            result = {True: "ok", False: "ERROR", None: "-"}[check.consistent]
            rows.append(
                (
                    label,
                    metric,
                    f"{check.client_count} / {fmt(check.server_count, 0)}",
                    fmt(check.client_mean_ms),
                    fmt(check.server_mean_ms),
                    fmt(check.overhead_ms),
                    faster,
                    result,
                )
            )
            if check.consistent is False:
                errors.append(f"{label} {metric}: at {faster} ms")
    return rows, errors


def server_blocks(summary: Summary, panel: Plot | None) -> list[Block]:
    """The "Server metrics" section (empty when the load step scraped none)."""
    groups = [(label, g) for label, g in _groups(summary) if g.server is not None]
    if not groups:
        return []
    headers = (
        "window", "scrapes ok", "KV % mean", "KV % max", "running mean/max",
        "waiting mean/max/p99", "preemptions", "prefix hit %", "prompt tok/s", "gen tok/s",
        "server TTFT p50/p99 ms", "server e2e p50/p99 ms",
    )  # fmt: skip
    blocks: list[Block] = [
        Heading(2, "Server metrics (the model server's /metrics during the load)"),
        Table(headers, tuple(_server_row(label, g.server) for label, g in groups if g.server)),
    ]
    rows, errors = _overhead_rows(groups)
    if rows:
        blocks.append(
            Paragraph(
                "Client overhead: the client's mean minus the server's own (network, HTTP, "
                "client). A bucket where more client requests were at or under the bound than "
                "the server counted means one of the two mis-measures."
            )
        )
        overhead_headers = (
            "window", "metric", "requests client/server", "client mean ms", "server mean ms",
            "overhead ms", "client faster at (ms)", "check",
        )  # fmt: skip
        blocks.append(Table(overhead_headers, tuple(rows)))
    for error in errors:
        blocks.append(Paragraph(f"ERROR: the client was faster than the server: {error}"))
    if panel is not None:
        blocks.append(Image(panel.file, panel.title))
    return blocks
