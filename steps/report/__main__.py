"""Report step: SLA verdict, regression check, report.md/html with plots, upload to S3.

    python -m steps.report --summary DIR --records PATH [PATH ...] --out DIR
        [--bucket B [--path P]] [--s3-endpoint-url URL] [--sla FILE] [--sla-<name> X ...]
        [--regression-tolerance X] [--regression-tolerance-<metric> X ...] [--history-window K]
        [--history-dir DIR] [--fail-on-breach [true|false]] [--outputs-dir DIR]
        [--load-exit-code CODE]

Every flag takes its Argo parameter unchanged: `--bucket ""` means no upload (then
`--history-dir` is the history), `--fail-on-breach true|false` (bare: true; also
`--no-fail-on-breach`). The verdict fails on an SLA breach, a regression (judged against the
last K runs of the history: steps.report.regression; `inconclusive` never fails), a load step
that failed (`--load-exit-code`) or an incomplete run (run.json `complete: false`). Exit codes:
0 pass (or fail without --fail-on-breach); 3 failed verdict with --fail-on-breach; 1 step
failure (S3 upload failed: the local copy in --out is complete); 2 bad input (flags, SLA file,
summary/records files).
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

import pyarrow as pa
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
    read_run_config,
    write_json,
)
from steps.report.evidence import DEFAULT_TOLERANCES, ROW_COLUMNS
from steps.report.history import (
    DEFAULT_WINDOW,
    MAX_ROWS_PER_RUN,
    HistoryError,
    LocalHistory,
    RunHistory,
    S3History,
    load_history,
    read_rows,
)
from steps.report.plots import render_plots, render_trend
from steps.report.regression import CurrentRun, RegressionOutcome, check_regression
from steps.report.render import build_blocks, render_html, render_markdown
from steps.report.run_checks import RunCheck, check_run
from steps.report.samples import read_samples
from steps.report.sla import (
    DEFAULT_ERROR_RATE,
    EMPTY_MEANS_OFF,
    SlaVerdict,
    evaluate_sla,
    merge_thresholds,
    parse_flag_value,
    parse_sla_yaml,
)
from steps.report.upload import (
    S3Location,
    UploadError,
    check_endpoint,
    check_run_names,
    make_s3_client,
    run_key_prefix,
    upload_files,
)
from steps.summary_model import (
    KEY_METRICS,
    OUTPUT_METRIC_NAMES,
    REGRESSION_METRIC_NAMES,
    SLA_METRIC_NAMES,
    Group,
    RunSection,
    Summary,
    parse_summary,
)

log = logging.getLogger("steps.report")

STEP = "report"

#: --sla-* help: the bound a threshold is, by the metric's better direction.
_BOUND_WORD = {"lower": "upper", "higher": "lower"}

#: How a breach line reads for an upper ("<=") and a lower (">=") bound.
_BROKEN = {"<=": ">", ">=": "<"}

#: Decimals of an output parameter by unit: a ratio such as error_rate needs more than ms.
_OUTPUT_DIGITS = {"ms": 3, "1/s": 3, "ratio": 6}


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
    fail_on_breach: bool = Field(
        False, description="exit 3 on a failed verdict (default: report it and exit 0)"
    )
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


@dataclass(frozen=True)
class RunIdentity:
    """The names that place a run in the history: S3 keys and --history-dir paths."""

    run_id: str
    scenario: str
    model: str
    base_url: str


@dataclass(frozen=True)
class _Storage:
    """Where the results go (S3, or only --out) and where earlier runs are looked up."""

    location: S3Location | None = None
    key_prefix: str = ""
    client: Any = None
    #: A client that could not be built: raised after the local results are written.
    client_error: UploadError | None = None
    history: RunHistory | None = None

    def report_uri(self, out: Path) -> str:
        """Where the report is read: its S3 URI when uploaded, else the local file."""
        if self.location is None:
            return str((out / "report.html").resolve())
        return self.location.uri(self.key_prefix + "report.html")

    def run_location(self, out: Path) -> str:
        """Where this run's results are: its S3 prefix when uploaded, else --out."""
        if self.location is None:
            return str(out.resolve())
        return self.location.uri(self.key_prefix)


def _sla_value(verdict: SlaVerdict) -> str:
    """The measured value for a breach line; a run with no data for it says so, not a blank."""
    return "no data" if verdict.value is None else format_number(verdict.value)


def _breaches(
    checks: Sequence[RunCheck], sla: Sequence[SlaVerdict], regression: RegressionOutcome
) -> list[str]:
    """One short phrase per failed check, threshold or regressed metric, for logs and exit line."""
    found = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    found += [
        f"{v.name} {_sla_value(v)} {_BROKEN[v.bound]} {format_number(v.limit)}"
        for v in sla
        if not v.passed
    ]
    found += [f"{v.name} regressed: {v.reason}" for v in regression.regressions]
    return found


def _read_summary(path: Path) -> Summary:
    """The summary.json copied into --out, typed (UsageError naming --summary)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--summary: cannot read {path} ({exc.strerror})") from None
    return parse_summary(text, f"--summary {path}")


def _run_identity(run: RunSection) -> RunIdentity:
    """run.{run_id, scenario, model, base_url}, present and safe as key segments (UsageError)."""
    named = (
        ("run_id", run.run_id),
        ("scenario", run.scenario),
        ("model", run.model),
        ("base_url", run.base_url),
    )
    for key, value in named:
        if not value:
            raise UsageError(f"--summary: summary.json run.{key} is missing or not a string")
    identity = RunIdentity(*(value or "" for _, value in named))
    # They become S3 keys and --history-dir paths: no '..', no absolute path, before any work.
    check_run_names(identity.scenario, identity.model, identity.run_id)
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


def _open_storage(
    location: S3Location | None,
    endpoint_url: str | None,
    identity: RunIdentity,
    history_dir: Path | None,
) -> _Storage:
    """The S3 client and history for `location`, or the --history-dir history without one."""
    if location is None:
        if history_dir is None:
            return _Storage()
        return _Storage(history=LocalHistory(history_dir, identity.scenario, identity.model))
    base = run_key_prefix(location, identity.scenario, identity.model, None)
    key_prefix = run_key_prefix(location, identity.scenario, identity.model, identity.run_id)
    try:
        client = make_s3_client(endpoint_url)
    except UploadError as exc:
        return _Storage(location, key_prefix, client_error=exc)
    return _Storage(location, key_prefix, client, history=S3History(client, location, base))


def _current_rows(records: Sequence[Path]) -> pa.Table:
    """The current run's rows (every shard, bounded like a history run's; HistoryError)."""
    tables = [
        read_rows(path, ROW_COLUMNS, MAX_ROWS_PER_RUN, f"--records {path}") for path in records
    ]
    return pa.concat_tables(tables)


def _regression(
    config: ReportConfig,
    storage: _Storage,
    identity: RunIdentity,
    summary: Summary,
    records: Sequence[Path],
) -> RegressionOutcome:
    """The check against the run history; a failed lookup is a note, never a step failure."""
    tolerances = _tolerances(config)
    window = config.history_window
    if storage.history is None:
        note = "No run history (no --bucket or --history-dir): nothing to compare with."
        return RegressionOutcome(tolerances, window, notes=(note,))
    history = load_history(storage.history, identity.run_id, identity.base_url, window, ROW_COLUMNS)
    if not history.runs:
        first = "First run of this scenario, model and target: nothing to compare with."
        return RegressionOutcome(tolerances, window, notes=(*history.notes, first))
    try:
        rows = _current_rows(records)
    except HistoryError as exc:
        return RegressionOutcome(tolerances, window, notes=(*history.notes, f"no verdict: {exc}"))
    location = storage.run_location(config.out)
    current = CurrentRun(identity.run_id, location, summary, rows)
    outcome = check_regression(current, history, tolerances, window)
    log.info(
        "judged against %d earlier runs: %d regressions",
        len(outcome.baseline_runs),
        len(outcome.regressions),
    )
    return outcome


def _tolerances(config: ReportConfig) -> dict[str, float]:
    """Per-metric defaults, then --regression-tolerance for the relative ones, then per metric."""
    tolerances = dict(DEFAULT_TOLERANCES)
    if config.regression_tolerance is not None:
        for name in tolerances:
            if KEY_METRICS[name].unit != "ratio":
                tolerances[name] = config.regression_tolerance
    return tolerances | config.regression_tolerances


def _output_values(overall: Group, verdict: str, report_uri: str) -> dict[str, str]:
    """The Argo output parameters: verdict, the key metrics, report_uri."""
    values = {"verdict": verdict}
    for name in OUTPUT_METRIC_NAMES:
        metric = KEY_METRICS[name]
        values[name] = format_number(metric.read(overall), _OUTPUT_DIGITS[metric.unit])
    values["report_uri"] = report_uri
    return values


def _verdict_json(result: ReportResult, run_id: str) -> dict[str, Any]:
    """verdict.json (steps/CONTRACTS.md "Report verdict")."""
    regression = result.regression
    return {
        "verdict": result.verdict,
        "run_id": run_id,
        "breaches": list(result.breaches),
        "checks": [c.__dict__ for c in result.checks],
        "sla": [v.__dict__ for v in result.sla],
        "regression": {
            "window": regression.window,
            "tolerances": dict(regression.tolerances),
            "baseline_run_ids": list(regression.baseline_runs),
            "notes": list(regression.notes),
            "metrics": [v.__dict__ for v in regression.verdicts],
            "change_points": {t.name: list(t.change_points) for t in regression.trends},
        },
        "report_uri": result.report_uri,
    }


def _judge(
    config: ReportConfig,
    summary: Summary,
    identity: RunIdentity,
    thresholds: Mapping[str, float | None],
    storage: _Storage,
    records: Sequence[Path],
) -> ReportResult:
    """Run checks, SLA thresholds and the regression check into one verdict."""
    checks = check_run(config.load_exit_code, summary.run)
    sla = evaluate_sla(thresholds, summary.overall)
    regression = _regression(config, storage, identity, summary, records)
    breaches = _breaches(checks, sla, regression)
    return ReportResult(
        verdict="fail" if breaches else "pass",
        checks=tuple(checks),
        sla=tuple(sla),
        regression=regression,
        report_uri=storage.report_uri(config.out),
        breaches=tuple(breaches),
    )


def _write_local(
    config: ReportConfig,
    summary: Summary,
    records: Sequence[Path],
    result: ReportResult,
    secrets: Sequence[str],
) -> None:
    """Plots, report.md/html and verdict.json into --out; output parameters (local URI)."""
    out = config.out
    plots = render_plots(read_samples(records), out)
    trend_plot = render_trend(result.regression.trends, out)
    blocks = build_blocks(
        summary, result.verdict, result.checks, result.sla, result.regression, plots, trend_plot
    )
    (out / "report.md").write_text(redact_text(render_markdown(blocks), secrets))
    (out / "report.html").write_text(redact_text(render_html(blocks, out), secrets))
    write_json(out / "verdict.json", _verdict_json(result, summary.run.run_id or ""))
    if config.outputs_dir is not None:
        local_uri = _Storage().report_uri(out)
        write_outputs(
            config.outputs_dir, _output_values(summary.overall, result.verdict, local_uri)
        )
    log.info("verdict %s (%d breaches); report in %s", result.verdict, len(result.breaches), out)


def _upload(config: ReportConfig, storage: _Storage) -> None:
    """Upload --out under the run's key prefix; then report_uri names the S3 copy."""
    if storage.location is None:
        return
    try:
        if storage.client_error is not None:
            raise storage.client_error
        files = bundle_files(config.out)
        upload_files(storage.client, storage.location, storage.key_prefix, files, config.out)
    except UploadError as exc:
        raise UploadError(f"{exc}; local results are complete in {config.out}") from None
    if config.outputs_dir is not None:
        write_outputs(config.outputs_dir, {"report_uri": storage.report_uri(config.out)})


def _thresholds(config: ReportConfig) -> dict[str, float | None]:
    """Defaults, overridden by the --sla file, overridden by --sla-* flags."""
    from_file = {}
    if config.sla is not None:
        text = read_input_text(config.sla, "--sla")
        from_file = parse_sla_yaml(text, f"--sla {config.sla}")
    return merge_thresholds(from_file, config.sla_flags)


def run(config: ReportConfig) -> ReportResult:
    """Judge, render and upload one run; raises BreachError only with fail_on_breach.

    Every input is checked before anything is written; the local results in --out are
    complete before any upload, so an S3 failure (exit 1) leaves them for a human.
    """
    records = [resolve_records_path(p) for p in config.records]
    thresholds = _thresholds(config)
    location = S3Location.of(config.bucket, config.path) if config.bucket else None
    endpoint_url = check_endpoint(config.s3_endpoint_url)
    # Env values are read only to scrub them; the run's config names further secret variables.
    secrets = _secret_values(read_run_config(records))
    collect_inputs(config.summary, records, config.out, secrets)
    summary = _read_summary(config.out / "summary.json")
    identity = _run_identity(summary.run)
    storage = _open_storage(location, endpoint_url, identity, config.history_dir)
    result = _judge(config, summary, identity, thresholds, storage, records)
    _write_local(config, summary, records, result, secrets)
    _upload(config, storage)
    if result.breaches and config.fail_on_breach:
        raise BreachError(f"breach: {'; '.join(result.breaches)}; report: {result.report_uri}")
    return result


def _parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m steps.report", __doc__.splitlines()[0] if __doc__ else None)
    fields = ReportConfig.model_fields
    parser.add_argument("--summary", required=True, help=fields["summary"].description)
    parser.add_argument("--records", nargs="+", required=True, help=fields["records"].description)
    parser.add_argument("--out", required=True, help=fields["out"].description)
    parser.add_argument("--bucket", default="", help=fields["bucket"].description)
    parser.add_argument("--path", default="", help=fields["path"].description)
    parser.add_argument("--s3-endpoint-url", default="", help=fields["s3_endpoint_url"].description)
    parser.add_argument("--sla", default="", help=fields["sla"].description)
    for name in SLA_METRIC_NAMES:
        default = {"schedule_delay_p99_ms": " (default 10)"}.get(name, "")
        empty = "'' = not given"
        if name in EMPTY_MEANS_OFF:
            default, empty = f" (default {DEFAULT_ERROR_RATE:g})", "'' = no bound"
        parser.add_argument(
            "--sla-" + name.replace("_", "-"),
            dest="sla_" + name,
            default=None,
            help=f"{_BOUND_WORD[KEY_METRICS[name].better]} bound for {name}{default}; "
            f"{empty}, 'off' = no bound",
        )
    parser.add_argument(
        "--regression-tolerance", default="", help=fields["regression_tolerance"].description
    )
    for name in REGRESSION_METRIC_NAMES:
        unit = "points, 0.005 = 0.5 points" if KEY_METRICS[name].unit == "ratio" else "relative"
        parser.add_argument(
            "--regression-tolerance-" + name.replace("_", "-"),
            dest="regression_tolerance_" + name,
            default="",
            help=f"threshold for {name} ({unit}; default {DEFAULT_TOLERANCES[name]:g})",
        )
    parser.add_argument("--history-window", default="", help=fields["history_window"].description)
    parser.add_argument("--history-dir", default="", help=fields["history_dir"].description)
    # A word, so the template passes the Argo parameter through unchanged; bare = true.
    parser.add_argument(
        "--fail-on-breach",
        nargs="?",
        const="true",
        default="false",
        metavar="true|false",
        help=fields["fail_on_breach"].description,
    )
    parser.add_argument(
        "--no-fail-on-breach",
        dest="fail_on_breach",
        action="store_const",
        const="false",
        help="same as --fail-on-breach false",
    )
    parser.add_argument("--outputs-dir", default="", help=fields["outputs_dir"].description)
    parser.add_argument("--load-exit-code", default="", help=fields["load_exit_code"].description)
    add_log_level_flag(parser)
    return parser


def _true_or_false(flag: str, raw: str) -> bool:
    """`true` or `false` (any case; "" = false, Argo's unset); any other word is a UsageError,
    never silently false."""
    word = raw.strip().lower()
    if word in ("true", "false", ""):
        return word == "true"
    raise UsageError(f"{flag}: expected true or false, got {raw!r}")


def _sla_flags(args: argparse.Namespace) -> dict[str, float | None]:
    """Thresholds given as --sla-* flags: absent = not given, "" = not given (or off), words."""
    sla_flags: dict[str, float | None] = {}
    for name in SLA_METRIC_NAMES:
        raw = getattr(args, "sla_" + name)
        if raw is None:  # flag absent: the SLA file's value or the default
            continue
        if raw.strip():
            sla_flags[name] = parse_flag_value(name, raw)
        elif name in EMPTY_MEANS_OFF:
            sla_flags[name] = None
    return sla_flags


def _tolerance(flag: str, raw: str) -> float | None:
    """A tolerance flag: "" = not given; else a number >= 0 (UsageError)."""
    if not raw.strip():
        return None
    try:
        tolerance = float(raw)
    except ValueError:
        raise UsageError(f"{flag}: expected a number like 0.05, got {raw!r}") from None
    if not tolerance >= 0:
        raise UsageError(f"{flag}: must be >= 0, got {raw!r}")
    return tolerance


def _per_metric_tolerances(args: argparse.Namespace) -> dict[str, float]:
    """--regression-tolerance-<metric> flags that were given."""
    given = {}
    for name in REGRESSION_METRIC_NAMES:
        flag = "--regression-tolerance-" + name.replace("_", "-")
        value = _tolerance(flag, getattr(args, "regression_tolerance_" + name))
        if value is not None:
            given[name] = value
    return given


def _window(raw: str) -> int:
    """--history-window: "" = the default; else a whole number >= 1 (UsageError)."""
    if not raw.strip():
        return DEFAULT_WINDOW
    if not raw.strip().isdigit() or int(raw) < 1:
        raise UsageError(f"--history-window: expected a whole number >= 1, got {raw!r}")
    return int(raw)


def _config_from_args(args: argparse.Namespace) -> ReportConfig:
    return ReportConfig(
        summary=Path(args.summary),
        records=tuple(Path(p) for p in args.records),
        out=Path(args.out),
        bucket=args.bucket.strip() or None,
        path=args.path,
        s3_endpoint_url=args.s3_endpoint_url or None,
        sla=Path(args.sla) if args.sla else None,
        sla_flags=_sla_flags(args),
        regression_tolerance=_tolerance("--regression-tolerance", args.regression_tolerance),
        regression_tolerances=_per_metric_tolerances(args),
        history_window=_window(args.history_window),
        history_dir=Path(args.history_dir) if args.history_dir else None,
        fail_on_breach=_true_or_false("--fail-on-breach", args.fail_on_breach),
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
