"""Report step: SLA verdict, regression check, report.md/html with plots, upload to S3.

    python -m steps.report --summary DIR --records PATH [PATH ...] --out DIR
        [--s3-uri s3://bucket/prefix] [--s3-endpoint-url URL] [--sla FILE] [--sla-<name> X ...]
        [--regression-tolerance 0.10] [--history-dir DIR] [--fail-on-breach] [--outputs-dir DIR]
        [--load-exit-code CODE]

The verdict fails on an SLA breach, a regression, a load step that failed (`--load-exit-code`)
or an incomplete run (run.json `complete: false`). Exit codes: 0 pass (or fail without
--fail-on-breach); 3 failed verdict with --fail-on-breach; 1 step failure (S3 upload failed:
the local copy in --out is complete); 2 bad input (flags, SLA file, summary/records files).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from steps.cli import (
    add_log_level_flag,
    configure_logging,
    make_parser,
    read_input_text,
    run_main,
)
from steps.errors import BenchError, BreachError, UsageError
from steps.outputs import format_number, write_outputs
from steps.records import resolve_records_path
from steps.redact import SECRET_ENV_VARS, redact_text
from steps.report.bundle import (
    bundle_files,
    collect_inputs,
    read_json,
    read_run_config,
    write_json,
)
from steps.report.plots import render_plots
from steps.report.regression import (
    DEFAULT_TOLERANCE,
    LocalHistory,
    RunHistory,
    compare_runs,
    find_previous_run,
)
from steps.report.render import RegressionOutcome, build_blocks, render_html, render_markdown
from steps.report.run_checks import RunCheck, check_run
from steps.report.samples import read_samples
from steps.report.sla import (
    DEFAULT_ERROR_RATE,
    EMPTY_MEANS_OFF,
    SLA_METRICS,
    SlaVerdict,
    evaluate_sla,
    merge_thresholds,
    parse_flag_value,
    parse_sla_yaml,
    summary_value,
)
from steps.report.upload import (
    S3History,
    S3Location,
    UploadError,
    check_endpoint,
    check_run_names,
    make_s3_client,
    run_key_prefix,
    upload_files,
)

log = logging.getLogger("steps.report")

STEP = "report"


class ReportConfig(BaseModel):
    """The report step's inputs (flags map 1:1 onto fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: Path = Field(description="directory written by steps.aggregate (summary.json, ...)")
    records: tuple[Path, ...] = Field(
        description="records.parquet files or directories holding one"
    )
    out: Path = Field(description="result directory: report, plots and copies of every input")
    s3_uri: str | None = Field(
        None, description="s3://bucket/prefix to upload to; unset = local only"
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, ...)")
    sla: Path | None = Field(None, description="SLA thresholds YAML file")
    sla_flags: dict[str, float | None] = Field(
        default_factory=dict, description="thresholds given as --sla-* flags (None = off)"
    )
    regression_tolerance: float = Field(DEFAULT_TOLERANCE, ge=0)
    history_dir: Path | None = Field(None, description="local run history when there is no S3")
    fail_on_breach: bool = False
    outputs_dir: Path | None = Field(None, description="directory for Argo output-parameter files")
    load_exit_code: str | None = Field(
        None,
        description="the load step's exit code as Argo reports it; unset = unknown "
        "(0 ok; 1 ok for a complete run; anything else fails the verdict)",
    )


@dataclass(frozen=True)
class ReportResult:
    """What the step decided and where the report is."""

    verdict: str
    checks: tuple[RunCheck, ...]
    sla: tuple[SlaVerdict, ...]
    regression: RegressionOutcome
    report_uri: str
    breaches: tuple[str, ...]


def _sla_value(verdict: SlaVerdict) -> str:
    """The measured value for a breach line; a run with no data for it says so, not a blank."""
    return "no data" if verdict.value is None else format_number(verdict.value)


def _breaches(
    checks: Sequence[RunCheck], sla: Sequence[SlaVerdict], regression: RegressionOutcome
) -> list[str]:
    """One short phrase per failed check, threshold or regressed metric, for logs and exit line."""
    found = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    found += [f"{v.name} {_sla_value(v)} > {format_number(v.limit)}" for v in sla if not v.passed]
    found += [
        f"{d.name} {d.change:+.1%} vs {regression.previous.run_id}"
        for d in regression.deltas
        if d.status == "regression" and d.change is not None and regression.previous
    ]
    return found


def _run_identity(summary: Any) -> dict[str, str]:
    """run.{run_id, scenario, model, base_url} from summary.json, validated (UsageError)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("overall"), dict):
        raise UsageError("--summary: summary.json has no 'overall' group (see steps/CONTRACTS.md)")
    run = summary.get("run")
    if not isinstance(run, dict):
        raise UsageError("--summary: summary.json has no 'run' object")
    identity = {}
    for key in ("run_id", "scenario", "model", "base_url"):
        value = run.get(key)
        if not isinstance(value, str) or not value:
            raise UsageError(f"--summary: summary.json run.{key} is missing or not a string")
        identity[key] = value
    # They become S3 keys and --history-dir paths: no '..', no absolute path, before any work.
    check_run_names(identity["scenario"], identity["model"], identity["run_id"])
    return identity


def _secret_values(config: Mapping[str, Any] | None) -> list[str]:
    """Current values of secret env vars, including those the run's config names."""
    names = list(SECRET_ENV_VARS)
    if config is not None:
        for section, key in (("server", "api_key_env"), ("tokenizer", "token_env")):
            part = config.get(section)
            if isinstance(part, dict) and isinstance(part.get(key), str):
                names.append(part[key])
    return [value for name in names if (value := os.environ.get(name))]


def _regression(
    history: RunHistory | None,
    identity: Mapping[str, str],
    overall: Mapping[str, Any],
    tolerance: float,
) -> RegressionOutcome:
    if history is None:
        return RegressionOutcome(
            tolerance,
            note="No run history (no --s3-uri or --history-dir): nothing to compare with.",
        )
    try:
        previous = find_previous_run(history, identity["run_id"], identity["base_url"])
    except UploadError as exc:
        log.warning("previous-run lookup failed: %s", exc)
        return RegressionOutcome(tolerance, note=f"Previous-run lookup failed ({exc}).")
    if previous is None:
        return RegressionOutcome(
            tolerance,
            note="First run of this scenario, model and target: nothing to compare with.",
        )
    deltas = compare_runs(overall, previous.summary.get("overall", {}), tolerance)
    log.info("compared with previous run %s", previous.run_id)
    return RegressionOutcome(tolerance, previous, tuple(deltas))


def _output_values(overall: Mapping[str, Any], verdict: str, report_uri: str) -> dict[str, str]:
    values = {"verdict": verdict}
    for name in ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms"):
        values[name] = format_number(summary_value(overall, SLA_METRICS[name]))
    values["error_rate"] = format_number(summary_value(overall, SLA_METRICS["error_rate"]), 6)
    values["report_uri"] = report_uri
    return values


def run(config: ReportConfig) -> ReportResult:
    """Judge, render and upload one run; raises BreachError only with fail_on_breach."""
    records = [resolve_records_path(p) for p in config.records]
    from_file = {}
    if config.sla is not None:
        text = read_input_text(config.sla, "--sla")
        from_file = parse_sla_yaml(text, f"--sla {config.sla}")
    thresholds = merge_thresholds(from_file, config.sla_flags)
    location = S3Location.parse(config.s3_uri) if config.s3_uri else None
    endpoint_url = check_endpoint(config.s3_endpoint_url)

    # Env values are read only to scrub them; the run's config names further secret variables.
    secrets = _secret_values(read_run_config(records))
    collect_inputs(config.summary, records, config.out, secrets)
    summary = read_json(config.out / "summary.json", "--summary")
    identity = _run_identity(summary)
    overall = summary["overall"]

    checks = check_run(config.load_exit_code, summary["run"])
    sla = evaluate_sla(thresholds, overall)
    history: RunHistory | None = None
    client: Any = None
    client_error: UploadError | None = None  # raised after the local results are written
    key_prefix = ""
    if location is not None:
        base = run_key_prefix(location, identity["scenario"], identity["model"], None)
        key_prefix = run_key_prefix(
            location, identity["scenario"], identity["model"], identity["run_id"]
        )
        try:
            client = make_s3_client(endpoint_url)
            history = S3History(client, location, base)
        except UploadError as exc:
            client_error = exc
    elif config.history_dir is not None:
        history = LocalHistory(config.history_dir, identity["scenario"], identity["model"])
    regression = _regression(history, identity, overall, config.regression_tolerance)

    breaches = _breaches(checks, sla, regression)
    verdict = "fail" if breaches else "pass"
    local_uri = str((config.out / "report.html").resolve())
    report_uri = location.uri(key_prefix + "report.html") if location else local_uri

    plots = render_plots(read_samples(records), config.out)
    blocks = build_blocks(summary, verdict, checks, sla, regression, plots)
    (config.out / "report.md").write_text(redact_text(render_markdown(blocks), secrets))
    (config.out / "report.html").write_text(redact_text(render_html(blocks, config.out), secrets))
    write_json(
        config.out / "verdict.json",
        {
            "verdict": verdict,
            "run_id": identity["run_id"],
            "breaches": breaches,
            "checks": [c.__dict__ for c in checks],
            "sla": [v.__dict__ for v in sla],
            "regression": {
                "tolerance": regression.tolerance,
                "previous_run_id": regression.previous.run_id if regression.previous else None,
                "note": regression.note,
                "deltas": [d.__dict__ for d in regression.deltas],
            },
            "report_uri": report_uri,
        },
    )
    if config.outputs_dir is not None:
        write_outputs(config.outputs_dir, _output_values(overall, verdict, local_uri))
    log.info("verdict %s (%d breaches); report in %s", verdict, len(breaches), config.out)

    if location is not None:
        try:
            if client_error is not None:
                raise client_error
            upload_files(client, location, key_prefix, bundle_files(config.out), config.out)
        except UploadError as exc:
            raise UploadError(f"{exc}; local results are complete in {config.out}") from None
        if config.outputs_dir is not None:
            write_outputs(config.outputs_dir, {"report_uri": report_uri})
    result = ReportResult(
        verdict, tuple(checks), tuple(sla), regression, report_uri, tuple(breaches)
    )
    if breaches and config.fail_on_breach:
        raise BreachError(f"breach: {'; '.join(breaches)}; report: {report_uri}")
    return result


def _parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m steps.report", __doc__.splitlines()[0] if __doc__ else None)
    fields = ReportConfig.model_fields
    parser.add_argument("--summary", required=True, help=fields["summary"].description)
    parser.add_argument("--records", nargs="+", required=True, help=fields["records"].description)
    parser.add_argument("--out", required=True, help=fields["out"].description)
    parser.add_argument("--s3-uri", default="", help=fields["s3_uri"].description)
    parser.add_argument("--s3-endpoint-url", default="", help=fields["s3_endpoint_url"].description)
    parser.add_argument("--sla", default="", help=fields["sla"].description)
    for name in SLA_METRICS:
        default = {"schedule_delay_p99_ms": " (default 10)"}.get(name, "")
        empty = "'' = not given"
        if name in EMPTY_MEANS_OFF:
            default, empty = f" (default {DEFAULT_ERROR_RATE:g})", "'' = no bound"
        parser.add_argument(
            "--sla-" + name.replace("_", "-"),
            dest="sla_" + name,
            default=None,
            help=f"upper bound for {name}{default}; {empty}, 'off' = no bound",
        )
    parser.add_argument(
        "--regression-tolerance",
        default="",
        help=f"relative change that counts as a regression (default {DEFAULT_TOLERANCE})",
    )
    parser.add_argument("--history-dir", default="", help=fields["history_dir"].description)
    parser.add_argument(
        "--fail-on-breach",
        # --no-fail-on-breach too: an Argo parameter can switch it without a conditional arg.
        action=argparse.BooleanOptionalAction,
        default=False,
        help="exit 3 on an SLA or regression breach (default: report it and exit 0)",
    )
    parser.add_argument("--outputs-dir", default="", help=fields["outputs_dir"].description)
    parser.add_argument("--load-exit-code", default="", help=fields["load_exit_code"].description)
    add_log_level_flag(parser)
    return parser


def _config_from_args(args: argparse.Namespace) -> ReportConfig:
    sla_flags: dict[str, float | None] = {}
    for name in SLA_METRICS:
        raw = getattr(args, "sla_" + name)
        if raw is None:  # flag absent: the SLA file's value or the default
            continue
        if raw.strip():
            sla_flags[name] = parse_flag_value(name, raw)
        elif name in EMPTY_MEANS_OFF:
            sla_flags[name] = None
    tolerance = DEFAULT_TOLERANCE
    if args.regression_tolerance.strip():
        try:
            tolerance = float(args.regression_tolerance)
        except ValueError:
            raise UsageError(
                "--regression-tolerance: expected a number like 0.10, "
                f"got {args.regression_tolerance!r}"
            ) from None
        if not tolerance >= 0:
            raise UsageError(
                f"--regression-tolerance: must be >= 0, got {args.regression_tolerance!r}"
            )
    return ReportConfig(
        summary=Path(args.summary),
        records=tuple(Path(p) for p in args.records),
        out=Path(args.out),
        s3_uri=args.s3_uri or None,
        s3_endpoint_url=args.s3_endpoint_url or None,
        sla=Path(args.sla) if args.sla else None,
        sla_flags=sla_flags,
        regression_tolerance=tolerance,
        history_dir=Path(args.history_dir) if args.history_dir else None,
        fail_on_breach=args.fail_on_breach,
        outputs_dir=Path(args.outputs_dir) if args.outputs_dir else None,
        load_exit_code=args.load_exit_code.strip() or None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (see the module docstring)."""

    def body() -> int:
        args = _parser().parse_args(argv)
        configure_logging(STEP, args.log_level)
        config = _config_from_args(args)
        try:
            run(config)
        except OSError as exc:
            # Local file-system failures (disk full, permissions); S3 errors are translated
            # where they happen and never reach here as OSError.
            where = exc.filename or config.out
            raise BenchError(f"cannot write the local results ({where}: {exc.strerror})") from None
        return 0

    return run_main(STEP, body)


if __name__ == "__main__":
    sys.exit(main())
