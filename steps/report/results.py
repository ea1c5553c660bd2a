"""What the report step writes into `--out` once it has judged: plots, report.md / report.html
(secrets scrubbed), verdict.json, and the Argo output parameters naming the local report.

The upload (`steps.report.storage`) sends this directory afterwards, so it is complete first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from steps.outputs import write_outputs
from steps.redact import redact_text
from steps.report.bundle import write_json
from steps.report.plots import render_capacity, render_plots, render_trend
from steps.report.render import build_blocks, render_html, render_markdown
from steps.report.samples import read_samples
from steps.report.server_panel import read_panel_samples, render_server_panel, server_blocks
from steps.report.storage import Storage
from steps.report.verdict import ReportResult, output_values, verdict_json
from steps.summary_model import Summary

__all__ = ["write_results"]

log = logging.getLogger("steps.report")


def write_results(
    out: Path,
    outputs_dir: Path | None,
    summary: Summary,
    records: Sequence[Path],
    result: ReportResult,
    secrets: Sequence[str],
) -> None:
    """Plots, report.md/html and verdict.json into `out`; output parameters (local URI)."""
    samples = read_samples(records)
    plots = render_plots(samples, out)
    trend_plot = render_trend(result.regression.trends, out)
    capacity_plot = render_capacity(result.capacity, out)
    panel = render_server_panel(samples, read_panel_samples(records), summary, out)
    server = server_blocks(summary, panel)
    blocks = build_blocks(summary, result, plots, trend_plot, capacity_plot, server)
    (out / "report.md").write_text(redact_text(render_markdown(blocks), secrets))
    (out / "report.html").write_text(redact_text(render_html(blocks, out), secrets))
    write_json(out / "verdict.json", verdict_json(result, summary.run.run_id or ""))
    if outputs_dir is not None:
        local_uri = Storage().report_uri(out)
        write_outputs(outputs_dir, output_values(summary, result, local_uri))
    log.info("verdict %s (%d breaches); report in %s", result.verdict, len(result.breaches), out)
