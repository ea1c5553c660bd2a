"""report.md and a self-contained report.html, both rendered from one list of blocks.

The content is built once (`build_blocks`, pure) as headings, paragraphs, tables and images, then
written twice: Markdown that references the PNGs next to it (browsable in the S3 console or a git
forge), and HTML with the PNGs inlined as base64 data URIs so the file opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.records import SATURATION_DELAY_MS
from steps.report.capacity import CAPACITY_QUANTILES, Capacity
from steps.report.evidence import MetricVerdict
from steps.report.plots import Plot
from steps.report.regression import MetricTrend, RegressionOutcome
from steps.report.run_checks import RunCheck
from steps.report.sla import SlaVerdict
from steps.report.verdict import ReportResult
from steps.summary_model import LATENCY_METRICS, Group, StageGroup, Summary

__all__ = [
    "Block",
    "Heading",
    "Image",
    "Paragraph",
    "Table",
    "build_blocks",
    "render_html",
    "render_markdown",
]

STAT_COLUMNS = ("count", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    file: str
    title: str


Block = Heading | Paragraph | Table | Image


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a table cell; "-" for null."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _check_blocks(checks: Sequence[RunCheck]) -> list[Block]:
    if not checks:
        return []
    rows = tuple((c.name, "pass" if c.passed else "FAIL", c.detail) for c in checks)
    return [Heading(2, "Run checks"), Table(("check", "result", "detail"), rows)]


def _sla_blocks(verdicts: Sequence[SlaVerdict]) -> list[Block]:
    if not verdicts:
        return [Heading(2, "SLA"), Paragraph("No SLA thresholds set.")]
    rows = tuple(
        (v.name, fmt(v.value, 4), f"{v.bound} {fmt(v.limit, 4)}", "pass" if v.passed else "FAIL")
        for v in verdicts
    )
    return [Heading(2, "SLA"), Table(("threshold", "value", "limit", "result"), rows)]


def _effect(verdict: MetricVerdict, value: float | None) -> str:
    """A change (or a bound of its interval): +x.x % relative, +x.xx pt for fractions."""
    if value is None:
        return "-"
    return f"{value:+.1%}" if verdict.relative else f"{value * 100:+.2f} pt"


def _verdict_row(verdict: MetricVerdict) -> tuple[str, ...]:
    status = verdict.status.upper() if verdict.status == "regression" else verdict.status
    interval = (
        "-"
        if verdict.low is None
        else f"{_effect(verdict, verdict.low)} .. {_effect(verdict, verdict.high)}"
    )
    tolerance = (
        f"{verdict.tolerance:.0%}" if verdict.relative else f"{verdict.tolerance * 100:g} pt"
    )
    return (
        verdict.name,
        fmt(verdict.current, 3),
        fmt(verdict.baseline, 3),
        _effect(verdict, verdict.effect),
        interval,
        tolerance,
        status,
    )


def _regression_blocks(outcome: RegressionOutcome) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Regression vs run history")]
    blocks += [Paragraph(note) for note in outcome.notes]
    if not outcome.verdicts:
        return blocks
    runs = len(outcome.baseline_runs)
    blocks.append(
        Paragraph(
            f"Judged against {runs} earlier run{'s' * (runs != 1)} of the last {outcome.window} "
            "(listed in the trend). Change = against the mean of the baseline runs, relative or "
            "in points (pt); the interval is where one more unchanged night would fall "
            "(run-to-run and within-run noise). A regression needs the change beyond both that "
            "interval and the tolerance; inconclusive never fails the run."
        )
    )
    headers = ("metric", "current", "baseline", "change", "interval", "tolerance", "status")
    blocks.append(Table(headers, tuple(_verdict_row(v) for v in outcome.verdicts)))
    blocks += [Paragraph(f"{v.name}: {v.status} - {v.reason}") for v in outcome.verdicts]
    return blocks


def _by_rate_blocks(result: ReportResult) -> list[Block]:
    """A multi-stage run stage by stage: its SLA, and its regression against the earlier runs'
    stages at the same rate (both inform; the overall SLA and regression decide)."""
    if not result.stage_sla:
        return []
    judged = {st.stage: st for st in result.regression.stages}
    rows = []
    for stage, rate, verdicts in result.stage_sla:
        sla = "; ".join(
            f"{v.name} {fmt(v.value)} vs {v.bound} {fmt(v.limit)}" for v in verdicts if not v.passed
        )
        st = judged.get(stage)
        if st is None:
            regression = "not judged (no history)"
        elif not st.baseline_runs:
            regression = "no earlier run had this rate"
        else:
            changed = [f"{v.name} {v.status}" for v in st.verdicts if v.status != "unchanged"]
            regression = f"vs {len(st.baseline_runs)} runs: " + ("; ".join(changed) or "unchanged")
        rows.append((fmt(rate), sla or "met", regression))
    return [
        Heading(2, "Per stage, by rate: SLA and regression"),
        Paragraph(
            "Each stage against the SLA (goodput, a bound on the whole run's rate, left out) and "
            "against the earlier runs' stages at the same rate. They inform: the overall SLA and "
            "regression check decide the verdict (four stages judge four times the metrics)."
        ),
        Table(("rate/s", "SLA", "regression"), tuple(rows)),
    ]


def _trend_blocks(trends: Sequence[MetricTrend], plot: Plot | None) -> list[Block]:
    """Each metric over the history (this run last, marked), its band and change points."""
    if not trends or len(trends[0].points) < 2:
        return []
    points = trends[0].points
    current = points[-1].run_id
    rows = []
    for index, point in enumerate(points):
        cells = []
        for trend in trends:
            value = trend.points[index].value
            shift = " (shift)" if point.run_id in trend.change_points else ""
            cells.append(fmt(value, 3) + shift)
        marker = " <- this run" if point.run_id == current else ""
        rows.append((point.run_id + marker, *cells, point.location))
    band = tuple(
        "-" if t.band is None else f"{fmt(t.band[0], 3)} .. {fmt(t.band[1], 3)}" for t in trends
    )
    rows.append(("noise band", *band, ""))
    shifts = [f"{t.name} from run {', '.join(t.change_points)}" for t in trends if t.change_points]
    blocks: list[Block] = [
        Heading(2, "Trend"),
        Paragraph(
            "Level shifts (change points, E-Divisive): "
            + ("; ".join(shifts) if shifts else "none in this window")
            + ". The noise band is where an unchanged night falls around the baseline mean."
        ),
        Table(("run", *(t.name for t in trends), "location"), tuple(rows)),
    ]
    if plot is not None:
        blocks.append(Image(plot.file, plot.title))
    return blocks


def _summary_blocks(overall: Group) -> list[Block]:
    throughput = overall.throughput
    counts = ", ".join(f"{k} {v}" for k, v in overall.requests.model_dump().items())
    blocks: list[Block] = [
        Heading(2, "Summary (all stages)"),
        Paragraph(
            f"Requests: {counts}. Error rate {fmt(overall.error_rate, 4)}. "
            f"Requested rate {fmt(overall.requested_rate)}/s, achieved "
            f"{fmt(overall.achieved_rate)}/s over {fmt(overall.window_s)} s. "
            f"Throughput {fmt(throughput.requests_per_s)} requests/s, "
            f"{fmt(throughput.input_tokens_per_s)} input tokens/s, "
            f"{fmt(throughput.output_tokens_per_s)} output tokens/s."
        ),
    ]
    if overall.load_generator_saturated:
        blocks.append(
            Paragraph(
                f"WARNING: schedule delay p99 > {SATURATION_DELAY_MS:g} ms: the load generator "
                "could not keep up "
                "(give the load pod more CPU); latencies include client-side queueing."
            )
        )
    latency = overall.latency_ms.model_dump(by_alias=True)
    rows = tuple(
        (name, *(fmt(latency[name][stat]) for stat in STAT_COLUMNS)) for name in LATENCY_METRICS
    )
    blocks.append(Table(("latency (ms)", *STAT_COLUMNS), rows))
    return blocks


def _stage_blocks(stages: Sequence[StageGroup]) -> list[Block]:
    rows = tuple(
        (
            fmt(s.stage),
            fmt(s.rate),
            fmt(s.achieved_rate),
            f"{s.requests.ok}/{s.requests.total}",
            fmt(s.latency_ms.ttft.p50),
            fmt(s.latency_ms.ttft.p99),
            fmt(s.latency_ms.itl.p50),
            fmt(s.latency_ms.itl.p99),
            fmt(s.latency_ms.e2e.p99),
        )
        for s in stages
    )
    headers: tuple[str, ...] = ("stage", "rate/s", "achieved/s", "ok/total", "TTFT p50")
    headers += ("TTFT p99", "ITL p50", "ITL p99", "e2e p99")
    return [Heading(2, "Per stage (ms)"), Table(headers, rows)]


def _capacity_blocks(capacity: Capacity | None, plot: Plot | None) -> list[Block]:
    """The capacity reading: the three rates, one row per stage by rate, the plot."""
    if capacity is None:
        return []
    quantiles = CAPACITY_QUANTILES
    rows = []
    for p in capacity.points:
        g, lat = p.group, p.group.latency_ms
        found = "client-limited" if p.client_limited else "; ".join(p.saturation) or "held"
        rows.append(
            (
                fmt(p.requested_rate),
                fmt(g.achieved_rate),
                fmt(g.error_rate, 4),
                *(fmt(getattr(s, q)) for s in (lat.ttft, lat.itl, lat.e2e) for q in quantiles),
                fmt(g.throughput.output_tokens_per_s, 1),
                found,
                "; ".join(p.sla_breaches) or "met",
            )
        )
    latency = tuple(f"{m} {q}" for m in ("TTFT", "ITL", "e2e") for q in quantiles)
    headers = ("rate/s", "sent/s", "error rate", *latency, "out tok/s", "saturation", "SLA")
    knee = f"{fmt(capacity.knee_rate)}/s" if capacity.knee_rate is not None else "not found"
    return [
        Heading(2, "Capacity"),
        Paragraph(
            f"Knee (highest rate before saturation): {knee}. Highest rate within the SLA: "
            f"{fmt(capacity.max_rate_within_sla)}/s. Recommended operating rate "
            f"({capacity.headroom:.0%} headroom): {fmt(capacity.recommended_rate)}/s."
        ),
        *(Paragraph(note) for note in capacity.notes),
        Table(headers, tuple(rows)),
        *([Image(plot.file, plot.title)] if plot is not None else []),
    ]


_POD_COLUMNS = (
    ("pod", "pod_index"),
    ("requests", "requests"),
    ("CPU ms/request", "cpu_ms_per_request"),
    ("setup CPU s", "setup_cpu_s"),
    ("clock offset ms", "clock_offset_ms"),
    ("clock round trip ms", "clock_rtt_ms"),
    ("schedule delay p50 ms", "schedule_delay_p50_ms"),
    ("schedule delay p99 ms", "schedule_delay_p99_ms"),
    ("first send delay ms", "start_delay_ms"),
)


def _pod_blocks(pods: Sequence[dict[str, Any]] | None, spread_ms: float | None) -> list[Block]:
    """A load spread over several pods: whether each pod kept its share of the schedule."""
    if not pods:
        return []
    return [
        Heading(2, "Load pods"),
        Paragraph(
            f"{len(pods)} load pods sent one schedule (request i from pod i mod {len(pods)}); "
            f"their first sends' delays spread over {fmt(spread_ms)} ms. Clock offsets are "
            "against the start coordinator."
        ),
        Table(
            tuple(h for h, _ in _POD_COLUMNS),
            tuple(tuple(fmt(pod.get(key)) for _, key in _POD_COLUMNS) for pod in pods),
        ),
    ]


def build_blocks(
    summary: Summary,
    result: ReportResult,
    plots: Sequence[Plot],
    trend_plot: Plot | None,
    capacity_plot: Plot | None,
    server: Sequence[Block] = (),
) -> list[Block]:
    """The report's content, top to bottom; `server`: the server-metrics section
    (steps.report.server_panel), after the client's per-stage table."""
    run = summary.run
    facts = (
        ("run id", run.run_id),
        ("scenario", run.scenario),
        ("model", run.model),
        ("target", run.base_url),
        ("api type", run.api_type),
        ("load type", run.load_type),
        ("started at", run.started_at),
        ("workers", run.num_workers),
        ("shards", run.shards),
        ("tool version", run.tool_version),
    )
    blocks: list[Block] = [
        Heading(1, f"Benchmark report: {run.scenario} / {run.model}"),
        Paragraph(f"Verdict: {result.verdict.upper()}"),
        Table(("run", "value"), tuple((k, fmt(v)) for k, v in facts)),
    ]
    blocks += _check_blocks(result.checks)
    blocks += _sla_blocks(result.sla)
    blocks += _regression_blocks(result.regression)
    blocks += _trend_blocks(result.regression.trends, trend_plot)
    blocks += _by_rate_blocks(result)
    if run.streaming is False:
        blocks.append(Paragraph(NON_STREAMING_NOTE))
    blocks += _summary_blocks(summary.overall)
    blocks += _stage_blocks(summary.stages)
    blocks += server
    blocks += _capacity_blocks(result.capacity, capacity_plot)
    blocks += _pod_blocks(run.pods, run.start_spread_ms)
    blocks.append(Heading(2, "Plots"))
    blocks += [Image(p.file, p.title) for p in plots]
    return blocks


#: What a non-streamed run measured (api.streaming false), said where its empty columns show.
NON_STREAMING_NOTE = (
    "Non-streaming run (api.streaming: false): each answer arrived whole, so TTFT, ITL and TPOT "
    "are not measured (empty below); e2e is the time to the whole answer."
)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block]) -> str:
    """Markdown; images reference the PNG files next to report.md."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        else:
            lines += [f"![{block.title}]({block.file})", ""]
    return "\n".join(lines)


_CSS = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
)


def render_html(blocks: Sequence[Block], image_dir: Path) -> str:
    """One HTML file with the PNGs from `image_dir` inlined (no network, no side files)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">']
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Benchmark report")
    parts += [f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            data = base64.b64encode((image_dir / block.file).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{esc(block.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(block.title)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
