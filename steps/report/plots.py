"""The report's PNG plots, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Cheap at 1M requests: a CDF is drawn from ~2,000 quantiles, not from every point, and a
timeline with more than `MAX_SCATTER_POINTS` points becomes p50/p99 lines over at most
`MAX_TIME_BINS` time bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from steps.records import SATURATION_DELAY_MS
from steps.report.capacity import CAPACITY_QUANTILES, Capacity
from steps.report.regression import MetricTrend
from steps.report.samples import Samples

__all__ = [
    "CDF_LEVELS",
    "Plot",
    "cdf_points",
    "plot_timeline",
    "render_capacity",
    "render_plots",
    "render_trend",
    "save_figure",
    "timeline_bins",
]

#: Quantile levels of a CDF curve: fine steps plus the tail levels a p99.9 reader looks at.
CDF_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 1.0, 2001), [0.999, 0.9995, 0.9999]]))
MAX_SCATTER_POINTS = 5_000
MAX_TIME_BINS = 400
#: Throughput timeline resolution: 1 s bins, coarser for long runs (at most this many bins).
MAX_THROUGHPUT_BINS = 600
_DPI = 100


@dataclass(frozen=True)
class Plot:
    """A written PNG: file name (relative to the report directory) and caption."""

    file: str
    title: str


def cdf_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, probability) of the empirical CDF at `CDF_LEVELS`; NaNs ignored, empty -> empty."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.empty(0), np.empty(0)
    return np.quantile(finite, CDF_LEVELS), CDF_LEVELS


def timeline_bins(
    t_s: np.ndarray, values: np.ndarray, max_bins: int = MAX_TIME_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin centre s, p50, p99) of `values` over equal-count time bins (NaNs dropped)."""
    keep = np.isfinite(t_s) & np.isfinite(values)
    order = np.argsort(t_s[keep], kind="stable")
    t_sorted, v_sorted = t_s[keep][order], values[keep][order]
    bins = min(max_bins, len(t_sorted))
    if bins == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    t_parts = np.array_split(t_sorted, bins)
    v_parts = np.array_split(v_sorted, bins)
    centres = np.array([p.mean() for p in t_parts])
    p50 = np.array([np.percentile(p, 50) for p in v_parts])
    p99 = np.array([np.percentile(p, 99) for p in v_parts])
    return centres, p50, p99


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)


def _cdf(ax: Axes, values: np.ndarray, label: str) -> None:
    x, y = cdf_points(values)
    if not len(x):
        _empty(ax, "data (no successful requests)")
        return
    ax.plot(x, y, drawstyle="steps-post", label=label)
    for level, style in ((0.5, ":"), (0.99, "--")):
        ax.axhline(level, color="grey", linestyle=style, linewidth=0.8)
    ax.set_xlabel(f"{label} (ms)")
    ax.set_ylabel("fraction of samples <= x")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)


def plot_timeline(ax: Axes, t_s: np.ndarray, values: np.ndarray, label: str) -> None:
    """`values` (ms) against time: points, or p50/p99 lines over time bins for many."""
    if not np.isfinite(values).any():
        _empty(ax, f"{label} samples")
        return
    if len(values) <= MAX_SCATTER_POINTS:
        ax.plot(t_s, values, ".", markersize=3, label=label)
    else:
        centres, p50, p99 = timeline_bins(t_s, values)
        ax.plot(centres, p50, label=f"{label} p50")
        ax.plot(centres, p99, label=f"{label} p99")
    ax.set_xlabel("time since first send (s)")
    ax.set_ylabel("ms")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")


def _throughput(fig: Figure, samples: Samples) -> None:
    req_ax, tok_ax = fig.subplots(2, 1, sharex=True)
    done = samples.done_s[np.isfinite(samples.done_s)]
    if not len(done):
        _empty(req_ax, "completed requests")
        return
    span = max(float(done.max()), 1.0)
    width = max(1.0, span / MAX_THROUGHPUT_BINS)
    edges = np.arange(0.0, span + width, width)
    finite = np.isfinite(samples.done_s)
    requests, _ = np.histogram(done, bins=edges)
    tokens, _ = np.histogram(done, bins=edges, weights=samples.output_tokens[finite])
    req_ax.step(edges[:-1], requests / width, where="post")
    req_ax.set_ylabel("requests/s")
    tok_ax.step(edges[:-1], tokens / width, where="post", color="tab:green")
    tok_ax.set_ylabel("output tokens/s")
    tok_ax.set_xlabel(f"completion time since first send (s), {width:g} s bins")
    for ax in (req_ax, tok_ax):
        ax.grid(alpha=0.3)


def save_figure(fig: Figure, out_dir: Path, file: str) -> None:
    """`fig` as a PNG in `out_dir` (Agg canvas, no creation-software stamp)."""
    FigureCanvasAgg(fig)
    fig.savefig(out_dir / file, format="png", dpi=_DPI, metadata={"Software": None})


def render_plots(samples: Samples, out_dir: Path) -> list[Plot]:
    """Write the report's PNGs into `out_dir`; returns them in report order."""
    plots: list[Plot] = []
    cdfs = (
        ("ttft_cdf.png", "TTFT CDF", samples.ttft_ms, "TTFT"),
        ("itl_cdf.png", "Inter-token latency CDF", samples.itl_ms, "ITL"),
        ("e2e_cdf.png", "End-to-end latency CDF", samples.e2e_ms, "e2e latency"),
    )
    for file, title, values, label in cdfs:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.subplots()
        _cdf(ax, values, label)
        ax.set_title(title)
        save_figure(fig, out_dir, file)
        plots.append(Plot(file, title))

    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    plot_timeline(ax, samples.sent_s, samples.ttft_ms, "TTFT")
    plot_timeline(ax, samples.sent_s, samples.e2e_ms, "e2e")
    ax.set_title("Latency over time (by send time)")
    save_figure(fig, out_dir, "latency_over_time.png")
    plots.append(Plot("latency_over_time.png", "Latency over time"))

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax = fig.subplots()
    plot_timeline(ax, samples.delay_sent_s, samples.schedule_delay_ms, "schedule delay")
    ax.axhline(SATURATION_DELAY_MS, color="red", linestyle="--", linewidth=0.8)
    ax.set_title(
        f"Schedule delay over time (send - scheduled; red: {SATURATION_DELAY_MS:g} ms saturation)"
    )
    save_figure(fig, out_dir, "schedule_delay_over_time.png")
    plots.append(Plot("schedule_delay_over_time.png", "Schedule delay over time"))

    fig = Figure(figsize=(9, 5), layout="constrained")
    _throughput(fig, samples)
    fig.suptitle("Throughput over time")
    save_figure(fig, out_dir, "throughput_over_time.png")
    plots.append(Plot("throughput_over_time.png", "Throughput over time"))
    return plots


def _trend_axes(ax: Axes, trend: MetricTrend) -> None:
    """One metric over the runs: the line, this run in red, the band, dashed level shifts."""
    values = np.array([np.nan if p.value is None else p.value for p in trend.points])
    x = np.arange(len(values))
    if trend.band is not None:
        ax.axhspan(*trend.band, color="tab:blue", alpha=0.15, linewidth=0)
    ax.plot(x, values, marker="o", markersize=3, linewidth=1)
    ax.plot(x[-1:], values[-1:], marker="o", markersize=6, color="tab:red", linestyle="none")
    ids = [p.run_id for p in trend.points]
    for run_id in trend.change_points:
        ax.axvline(ids.index(run_id) - 0.5, color="tab:orange", linestyle="--", linewidth=1)
    ax.set_title(trend.name, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def render_trend(trends: Sequence[MetricTrend], out_dir: Path) -> Plot | None:
    """trend.png: every regression metric over the history (None with fewer than 2 runs)."""
    if not trends or len(trends[0].points) < 2:
        return None
    columns = 3
    rows = -(-len(trends) // columns)
    fig = Figure(figsize=(10, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, trend in zip(axes, trends, strict=False):
        _trend_axes(ax, trend)
    for ax in axes[len(trends) :]:
        ax.set_visible(False)
    fig.suptitle("Trend: oldest run left, this run in red; band = noise; dashed = level shift")
    save_figure(fig, out_dir, "trend.png")
    return Plot("trend.png", "Key metrics over the run history")


def _capacity_marks(ax: Axes, capacity: Capacity) -> None:
    """The knee (green), the first saturated rate (red) and the recommended rate (blue)."""
    marks = (
        (capacity.knee_rate, "tab:green", "-"),
        (capacity.saturated_rate, "tab:red", "--"),
        (capacity.recommended_rate, "tab:blue", ":"),
    )
    for rate, color, style in marks:
        if rate is not None:
            ax.axvline(rate, color=color, linestyle=style, linewidth=1)


def render_capacity(capacity: Capacity | None, out_dir: Path) -> Plot | None:
    """capacity.png: latency percentiles and output throughput against the requested rate."""
    if capacity is None:
        return None
    rates = [p.requested_rate for p in capacity.points]
    fig = Figure(figsize=(10, 6), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, metric in zip(axes, ("ttft", "itl", "e2e"), strict=False):
        stats = [getattr(p.group.latency_ms, metric) for p in capacity.points]
        for quantile in CAPACITY_QUANTILES:
            values = [np.nan if (v := getattr(s, quantile)) is None else v for s in stats]
            ax.plot(rates, values, marker="o", label=quantile)
        ax.set_title(f"{metric.upper()} (ms)", fontsize=9)
        ax.legend(fontsize=7)
    tokens = [p.group.throughput.output_tokens_per_s for p in capacity.points]
    axes[3].plot(rates, [np.nan if v is None else v for v in tokens], marker="o")
    axes[3].set_title("Output tokens/s", fontsize=9)
    for ax in axes:
        _capacity_marks(ax, capacity)
        ax.set_xlabel("requested rate (1/s)", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Capacity: green = knee, red = first saturated stage, blue = recommended")
    save_figure(fig, out_dir, "capacity.png")
    return Plot("capacity.png", "Latency and throughput against the requested rate")
