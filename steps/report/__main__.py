"""Report step: SLA verdict, regression check, report.md/html with plots, upload to S3.

    python -m steps.report --summary DIR --records PATH [PATH ...] --out DIR
        [--bucket B [--path P]] [--s3-endpoint-url URL] [--sla FILE] [--sla-<name> X ...]
        [--regression-tolerance X] [--regression-tolerance-<metric> X ...] [--history-window K]
        [--history-dir DIR] [--capacity-headroom X] [--fail-on-breach [true|false]]
        [--outputs-dir DIR] [--load-exit-code CODE]

Every flag takes its Argo parameter unchanged: `--bucket ""` means no upload (then
`--history-dir` is the history), `--fail-on-breach true|false` (bare: true; also
`--no-fail-on-breach`). The verdict fails on an SLA breach, a regression (judged against the
last K runs of the history: steps.report.regression; `inconclusive` never fails), a load step
that failed (`--load-exit-code`) or an incomplete run (run.json `complete: false`). A run of
stages at several rates also gets a capacity reading (steps.report.capacity: knee, highest rate
within the SLA, recommended rate), which informs and never fails the verdict. Exit codes:
0 pass (or fail without --fail-on-breach); 3 failed verdict with --fail-on-breach; 1 step
failure (S3 upload failed: the local copy in --out is complete); 2 bad input (flags, SLA file,
summary/records files).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_log_level_flag, configure_logging, make_parser, run_main
from steps.errors import BenchError, BreachError, UsageError
from steps.records import resolve_records_path
from steps.report.bundle import collect_inputs, read_run_config, secrets_to_scrub
from steps.report.capacity import DEFAULT_HEADROOM
from steps.report.config import ReportConfig
from steps.report.evidence import DEFAULT_TOLERANCES
from steps.report.history import DEFAULT_WINDOW
from steps.report.results import write_results
from steps.report.sla import DEFAULT_ERROR_RATE, EMPTY_MEANS_OFF, parse_flag_value
from steps.report.storage import open_storage, run_identity, upload_results
from steps.report.upload import S3Location, check_endpoint
from steps.report.verdict import ReportResult, judge_run, sla_thresholds
from steps.summary_model import (
    KEY_METRICS,
    REGRESSION_METRIC_NAMES,
    SLA_METRIC_NAMES,
    Summary,
    parse_summary,
)

log = logging.getLogger("steps.report")

STEP = "report"

#: --sla-* help: the bound a threshold is, by the metric's better direction.
_BOUND_WORD = {"lower": "upper", "higher": "lower"}


def _read_summary(path: Path) -> Summary:
    """The summary.json copied into --out, typed (UsageError naming --summary)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--summary: cannot read {path} ({exc.strerror})") from None
    return parse_summary(text, f"--summary {path}")


def run(config: ReportConfig) -> ReportResult:
    """Judge, render and upload one run; raises BreachError only with fail_on_breach.

    Every input is checked before anything is written; the local results in --out are
    complete before any upload, so an S3 failure (exit 1) leaves them for a human.
    """
    records = [resolve_records_path(p) for p in config.records]
    thresholds = sla_thresholds(config)
    location = S3Location.of(config.bucket, config.path) if config.bucket else None
    endpoint_url = check_endpoint(config.s3_endpoint_url)
    # The run's config names further secret variables; their values are scrubbed too.
    secrets = secrets_to_scrub(read_run_config(records))
    collect_inputs(config.summary, records, config.out, secrets)
    summary = _read_summary(config.out / "summary.json")
    identity = run_identity(summary.run)
    storage = open_storage(location, endpoint_url, identity, config.history_dir)
    result = judge_run(config, summary, identity, thresholds, storage, records)
    write_results(config.out, config.outputs_dir, summary, records, result, secrets)
    upload_results(storage, config.out, config.outputs_dir)
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
    parser.add_argument(
        "--capacity-headroom", default="", help=fields["capacity_headroom"].description
    )
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


def _headroom(raw: str) -> float:
    """--capacity-headroom: "" = the default; else a share in [0, 1) (UsageError)."""
    if not raw.strip():
        return DEFAULT_HEADROOM
    try:
        headroom = float(raw)
    except ValueError:
        raise UsageError(f"--capacity-headroom: expected a share like 0.25, got {raw!r}") from None
    if not 0 <= headroom < 1:
        raise UsageError(f"--capacity-headroom: must be >= 0 and < 1, got {raw!r}")
    return headroom


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
        capacity_headroom=_headroom(args.capacity_headroom),
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
