"""The report step's config: one field per flag (`--x-y` = field `x_y` = Argo parameter `x_y`).

`steps.report.__main__` turns the flags into this model; the other modules read it, so the
knobs have one home and one description (also the flags' `--help`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from steps.report.capacity import DEFAULT_HEADROOM
from steps.report.history import DEFAULT_WINDOW

__all__ = ["ReportConfig"]


class ReportConfig(BaseModel):
    """The report step's inputs (flags map 1:1 onto fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: Path = Field(description="directory written by steps.aggregate (summary.json, ...)")
    records: tuple[Path, ...] = Field(
        description="records.parquet files or directories holding one"
    )
    out: Path = Field(description="result directory: report, plots and copies of every input")
    bucket: str | None = Field(None, description="S3 bucket to upload to; empty = local only")
    path: str = Field("", description="key prefix inside the bucket")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, ...)")
    sla: Path | None = Field(None, description="SLA thresholds YAML file")
    sla_flags: dict[str, float | None] = Field(
        default_factory=dict, description="thresholds given as --sla-* flags (None = off)"
    )
    regression_tolerance: float | None = Field(
        None,
        ge=0,
        description="practical threshold for every relative metric (0.05 = 5 %%); "
        "empty = each metric's default (latency medians and rates 0.05, p99s 0.15)",
    )
    regression_tolerances: dict[str, float] = Field(
        default_factory=dict, description="per-metric thresholds (--regression-tolerance-<metric>)"
    )
    history_window: int = Field(
        DEFAULT_WINDOW, ge=1, description=f"earlier runs in the baseline (default {DEFAULT_WINDOW})"
    )
    history_dir: Path | None = Field(None, description="local run history when there is no S3")
    capacity_headroom: float = Field(
        DEFAULT_HEADROOM,
        ge=0,
        lt=1,
        description="a multi-stage run's recommended rate is this share below its capacity "
        f"(default {DEFAULT_HEADROOM:g}: the guide's 20-30 %%)",
    )
    fail_on_breach: bool = Field(
        False, description="exit 3 on a failed verdict (default: report it and exit 0)"
    )
    outputs_dir: Path | None = Field(None, description="directory for Argo output-parameter files")
    load_exit_code: str | None = Field(
        None,
        description="the load step's exit code as Argo reports it; unset = unknown "
        "(0 ok; 1 ok for a complete run; anything else fails the verdict)",
    )
