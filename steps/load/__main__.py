"""CLI of the load step: `python -m steps.load --out DIR [--config FILE] [overrides...]`;
`python -m steps.load merge --out DIR` recovers the records of a run whose process was lost;
`python -m steps.load probe --out DIR [--config FILE] [overrides...] [--sweep-<field> ...]
[--outputs-dir DIR]` finds the saturation rate of a `load.sweep` config and writes its stages
(`steps.load.probe`).
`python -m steps.load coordinate --load-pods N` starts the coordinator of a load spread over N
pods, each of which runs `--load-pods N --pod-index i --coordinator HOST`.

The config is inference-perf's config.yml (default: the packaged baseline scenario); flags
override it, one name per knob (flag `--base-url` = Argo parameter `base_url`). An empty
string for an optional flag means "unset" (Argo passes "" for parameters left empty).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from steps.cli import add_log_level_flag, configure_logging, make_parser, run_main
from steps.errors import UsageError
from steps.load.config import (
    CONCURRENT,
    Config,
    config_from_dict,
    load_config,
    output_dir,
)
from steps.load.coordinator import COORDINATOR_PORT, serve
from steps.load.plan import FanOut, LoadSettings, PodShare
from steps.load.pod_link import parse_address
from steps.load.probe import probe
from steps.load.recover import main as recover_main
from steps.load.run import LoadResult, run
from steps.load.scrape import DISCOVERY_MODES, MAX_INTERVAL_S, MetricsSettings
from steps.names import check_run_id, check_scenario_name, new_run_id
from steps.shared import SweepEstimator, SweepType, Switch, parse_label_selector
from steps.stage_spec import STAGES_FORMAT, parse_stages

__all__ = ["main"]


def _opt(kind: type) -> Any:
    """argparse type: "" -> None (unset), else `kind(value)`."""

    def convert(value: str) -> Any:
        if value == "":
            return None
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {value!r}") from None

    convert.__name__ = kind.__name__
    return convert


def _parser() -> argparse.ArgumentParser:
    p = make_parser("steps.load", "Streaming load generator: records.parquet + run.json.")
    p.add_argument(
        "--out", type=_opt(Path), help="output directory (default: storage.local_storage.path)"
    )
    p.add_argument(
        "--config", type=_opt(Path), help="inference-perf config.yml (default: packaged scenario)"
    )
    p.add_argument(
        "--scenario", type=_opt(str), default=None, help="packaged scenario name (default baseline)"
    )
    p.add_argument(
        "--tokenizer-dir", type=_opt(Path), help="local tokenizer directory (else config tokenizer)"
    )
    p.add_argument(
        "--dataset-dir",
        type=_opt(Path),
        help="data.type shareGPT: the dataset step's output directory (else data.path)",
    )
    p.add_argument("--run-id", type=_opt(str), help="run id (default YYYYMMDDTHHMMSSZ-<6 hex>)")
    p.add_argument("--base-url", type=_opt(str), help="server.base_url")
    p.add_argument("--model-name", type=_opt(str), help="server.model_name")
    p.add_argument(
        "--api-type", type=_opt(str), choices=["completion", "chat", None], help="api.type"
    )
    _add_shape_flags(p)
    p.add_argument("--num-workers", type=_opt(int), help="load.num_workers")
    p.add_argument("--seed", type=_opt(int), help="load.seed")
    p.add_argument("--warmup-requests", type=_opt(int), help="load.warmup_requests")
    p.add_argument("--request-timeout", type=_opt(float), help="load.request_timeout in s")
    p.add_argument("--drain-timeout", type=_opt(float), help="load.drain_timeout in s")
    p.add_argument("--api-key-env", type=_opt(str), help="NAME of the env var holding the API key")
    p.add_argument(
        "--load-type", type=_opt(str), choices=["constant", "poisson", None], help="load.type"
    )
    _add_fanout_flags(p)
    _add_metrics_flags(p)
    add_log_level_flag(p)
    return p


#: The length-distribution flags (`--input-mean`, ..., `--output-max`): each sets one field of
#: the config's `data.<side>_distribution`, keeping its type (normal, uniform, fixed).
_DISTRIBUTION_FLAGS: dict[str, type] = {"mean": float, "std_dev": float, "min": int, "max": int}


def _add_shape_flags(p: argparse.ArgumentParser) -> None:
    """The flags that shape the load: stages (a spec, or rate/duration for every stage), the
    early stop that may cut them short, and request lengths (exact, or a distribution's
    fields)."""
    p.add_argument("--stages", type=_opt(str), help=f"load.stages, replaced whole: {STAGES_FORMAT}")
    p.add_argument("--rate", type=_opt(float), help="load.stages[*].rate (every stage)")
    p.add_argument(
        "--duration", type=_opt(float), help="load.stages[*].duration in s (every stage)"
    )
    p.add_argument(
        "--early-stop",
        type=_opt(str),
        choices=[*(s.value for s in Switch), None],
        help="load.early_stop: skip the remaining stages once one saturates (on|off)",
    )
    p.add_argument(
        "--early-stop-ttft-p99-ms",
        type=_opt(float),
        help="load.early_stop.ttft_p99_ms: also stop once a stage's TTFT p99 is above this",
    )
    p.add_argument("--input-tokens", type=_opt(int), help="fixed prompt length in tokens")
    p.add_argument("--output-tokens", type=_opt(int), help="fixed max_tokens per request")
    for side, field in (("input", "prompt length"), ("output", "max_tokens")):
        for stat, kind in _DISTRIBUTION_FLAGS.items():
            p.add_argument(
                f"--{side}-{stat.replace('_', '-')}",
                type=_opt(kind),
                help=f"data.{side}_distribution.{stat} ({field} in tokens)",
            )


def _coordinate_parser() -> argparse.ArgumentParser:
    p = make_parser("steps.load coordinate", "Start coordinator of a load spread over N pods.")
    p.add_argument("--load-pods", type=int, required=True, help="number of load pods (>= 2)")
    p.add_argument("--port", type=int, default=COORDINATOR_PORT, help="TCP port to listen on")
    p.add_argument("--run-id", type=_opt(str), help="run id (default YYYYMMDDTHHMMSSZ-<6 hex>)")
    p.add_argument(
        "--start-lead-s",
        type=float,
        default=1.0,
        help="a barrier's start is this long after the last pod reached it (default 1)",
    )
    p.add_argument(
        "--deadline-s", type=float, default=86_400.0, help="give up after this long (default 1 d)"
    )
    add_log_level_flag(p)
    return p


def _pods(args: argparse.Namespace) -> tuple[PodShare, FanOut | None]:
    """This pod's share and, with several pods, how it meets the others (one line each error)."""
    count = 1 if args.load_pods is None else args.load_pods
    index = 0 if args.pod_index is None else args.pod_index
    if count < 1:
        raise UsageError(f"--load-pods {count}: must be at least 1")
    if not 0 <= index < count:
        raise UsageError(f"--pod-index {index}: must be in 0..{count - 1} (--load-pods {count})")
    if count == 1:
        return PodShare(0, 1), None
    if args.coordinator is None:
        raise UsageError(f"--load-pods {count} needs --coordinator HOST[:PORT]")
    if args.run_id is not None:
        raise UsageError("--run-id with --load-pods > 1: the coordinator names the run")
    if args.start_timeout is None or args.start_timeout <= 0:
        raise UsageError(f"--start-timeout {args.start_timeout}: must be > 0 s")
    try:
        address = parse_address(args.coordinator)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return PodShare(index, count), FanOut(address, args.start_timeout)


def _add_fanout_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a load spread over several pods (steps.load.coordinator)."""
    p.add_argument(
        "--load-pods", type=_opt(int), help="load pods sending one schedule together (default 1)"
    )
    p.add_argument("--pod-index", type=_opt(int), help="this pod's index, 0..load_pods-1")
    p.add_argument(
        "--coordinator",
        type=_opt(str),
        help=f"HOST[:PORT] of `coordinate` (port {COORDINATOR_PORT})",
    )
    p.add_argument(
        "--start-timeout",
        type=_opt(float),
        default=600.0,
        help="s to wait for the coordinator and every other pod to be ready (default 600)",
    )


def _add_metrics_flags(p: argparse.ArgumentParser) -> None:
    """The server-metrics flags (steps.load.scrape)."""
    p.add_argument(
        "--server-metrics-interval",
        type=_opt(float),
        default=None,
        help="seconds between scrapes of the server's /metrics during the load (default 1; "
        "0 = off); rows in server_metrics.parquet",
    )
    p.add_argument(
        "--metrics-discovery",
        type=_opt(str),
        choices=[*DISCOVERY_MODES, None],
        help="what to scrape: auto (the Ready model pods in a cluster, else the base URL), "
        "pods (list them with any Kubernetes credentials), url (the base URL only)",
    )
    p.add_argument(
        "--metrics-port",
        type=_opt(int),
        help="port of the model pods' /metrics (default: the base URL's port)",
    )
    p.add_argument(
        "--target-labels",
        type=_opt(str),
        help="model pods' labels k=v[,k=v] (pods to scrape in a cluster)",
    )
    p.add_argument("--target-namespace", type=_opt(str), help="model pods' namespace")


def _fixed(n: int) -> dict[str, Any]:
    return {"type": "fixed", "mean": n, "std_dev": 0, "min": n, "max": n}


def _distribution(args: argparse.Namespace, side: str, current: dict[str, Any]) -> dict[str, Any]:
    """`data.<side>_distribution` with the flags given: `--<side>-tokens` (exact) or the
    per-field flags, never both (which would win is a guess)."""
    fields = {s: getattr(args, f"{side}_{s}") for s in _DISTRIBUTION_FLAGS}
    given = {s: v for s, v in fields.items() if v is not None}
    exact = getattr(args, f"{side}_tokens")
    if exact is not None and given:
        flags = ", ".join(f"--{side}-{s.replace('_', '-')}" for s in given)
        raise UsageError(f"--{side}-tokens (an exact length) and {flags}: give one of them")
    if exact is not None:
        return _fixed(exact)
    return {**current, **given}


def _early_stop(args: argparse.Namespace, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """`load.early_stop`: `--early-stop on|off` switches it, `--early-stop-ttft-p99-ms` sets
    its latency limit (only with it on: a limit that never stops anything is a mistake)."""
    if args.early_stop == Switch.off:
        if args.early_stop_ttft_p99_ms is not None:
            raise UsageError("--early-stop-ttft-p99-ms: early stop is off (--early-stop off)")
        return None
    block = dict(current or {}) if args.early_stop == Switch.on or current is not None else None
    if args.early_stop_ttft_p99_ms is not None:
        if block is None:
            raise UsageError("--early-stop-ttft-p99-ms: needs early stop on (--early-stop on)")
        block["ttft_p99_ms"] = args.early_stop_ttft_p99_ms
    return block


def _stages(args: argparse.Namespace, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`load.stages`: `--stages` replaces them, `--rate`/`--duration` set every stage."""
    if args.stages is None:
        if args.rate is None and args.duration is None:
            return current  # closed-loop stages too (num_requests, concurrency_level)
        if any("rate" not in stage for stage in current):
            raise UsageError(
                "--rate/--duration: the config's stages are closed-loop (num_requests, "
                "concurrency_level); give --stages or edit the config"
            )
        return [
            {
                "rate": stage["rate"] if args.rate is None else args.rate,
                "duration": stage["duration"] if args.duration is None else args.duration,
            }
            for stage in current
        ]
    if args.rate is not None or args.duration is not None:
        raise UsageError("--stages and --rate/--duration: give the stages one way")
    try:
        stages = parse_stages(args.stages)
    except ValueError as exc:
        raise UsageError(f"--stages {args.stages!r}: {exc}") from None
    return [{"rate": rate, "duration": seconds} for rate, seconds in stages]


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """The config with every given flag applied; validated again (errors name the key)."""
    data = config.model_dump(mode="json")
    if args.base_url is not None:
        data["server"]["base_url"] = args.base_url
    if args.model_name is not None:
        data["server"]["model_name"] = args.model_name
    if args.api_key_env is not None:
        data["server"]["api_key_env"] = args.api_key_env
    if args.api_type is not None:
        data["api"]["type"] = args.api_type
    for side in ("input", "output"):
        key = f"{side}_distribution"
        data["data"][key] = _distribution(args, side, data["data"][key])
    load = data["load"]
    load["stages"] = _stages(args, load["stages"])
    load["early_stop"] = _early_stop(args, load["early_stop"])
    for flag, key in (
        ("num_workers", "num_workers"),
        ("seed", "seed"),
        ("warmup_requests", "warmup_requests"),
        ("request_timeout", "request_timeout"),
        ("drain_timeout", "drain_timeout"),
        ("load_type", "type"),
    ):
        value = getattr(args, flag)
        if value is not None:
            load[key] = value
    return config_from_dict(data, "config with flag overrides")


def _scenario_name(args: argparse.Namespace) -> str:
    """The run's scenario name, checked before anything is read: it becomes an S3 key segment
    and, without --config, names a packaged file (`--scenario ../..` loaded any YAML file)."""
    if args.scenario is not None:
        name, flag = args.scenario, "--scenario"
    elif args.config is not None:
        name, flag = args.config.stem, f"--config {args.config} (its file name names the scenario)"
    else:
        return "baseline"
    try:
        return check_scenario_name(name)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _run_id(args: argparse.Namespace) -> str:
    """--run-id, checked before anything is read by the rule the report step stores under, or a
    new one."""
    if args.run_id is None:
        return new_run_id()
    try:
        return check_run_id(args.run_id)
    except ValueError as exc:
        raise UsageError(f"--run-id: {exc}") from None


def _load_base_config(args: argparse.Namespace) -> tuple[Config, str]:
    scenario = _scenario_name(args)
    if args.config is not None:
        return load_config(args.config), scenario
    resource = resources.files("steps") / "scenarios" / f"{scenario}.yml"
    if not resource.is_file():
        raise UsageError(
            f"unknown --scenario {scenario!r}: no packaged steps/scenarios/{scenario}.yml"
        )
    with resources.as_file(resource) as path:
        return load_config(path), scenario


def _tokenizer_source(args: argparse.Namespace, config: Config) -> str:
    """--tokenizer-dir (a local directory), else the config's tokenizer or served model name."""
    if args.tokenizer_dir is not None:
        if not args.tokenizer_dir.is_dir():
            raise UsageError(f"--tokenizer-dir {args.tokenizer_dir}: not a directory")
        return str(args.tokenizer_dir)
    source = config.tokenizer.pretrained_model_name_or_path or config.server.model_name or ""
    if not source:
        raise UsageError(
            "no tokenizer: pass --tokenizer-dir or set tokenizer.pretrained_model_name_or_path"
        )
    return source


def _settings(args: argparse.Namespace) -> LoadSettings:
    """Everything `run` needs, checked in the order a user fixes it: names, config, paths."""
    pods, fanout = _pods(args)
    run_id = _run_id(args)  # with a coordinator: a placeholder, replaced by the coordinator's
    base, scenario = _load_base_config(args)
    config = apply_overrides(base, args)
    # From the config as read: `apply_overrides` rebuilds it from a full dump, after which every
    # key counts as written (a `local_storage: {}` would claim inference-perf's default path and
    # refuse any --out); no flag touches `storage`, so both configs agree on it otherwise.
    if pods.count > 1 and config.load.type == CONCURRENT:
        raise UsageError(
            f"load.type concurrent with --load-pods {pods.count}: a closed loop runs in one pod "
            "(its users are not a schedule to split)"
        )
    out = output_dir(base, args.out)
    tokenizer = _tokenizer_source(args, config)
    return LoadSettings(
        config,
        out,
        tokenizer,
        run_id,
        scenario,
        args.log_level,
        dataset=args.dataset_dir,
        pods=pods,
        fanout=fanout,
        # One scraper per run: the servers are the same whichever pod looks.
        metrics=_metrics_settings(args) if pods.index == 0 else MetricsSettings(interval_s=0),
    )


def _metrics_settings(args: argparse.Namespace) -> MetricsSettings:
    """The server-metrics flags, checked (a bad value is one line, exit 2)."""
    interval = 1.0 if args.server_metrics_interval is None else args.server_metrics_interval
    if not 0 <= interval <= MAX_INTERVAL_S:
        raise UsageError(
            f"--server-metrics-interval: expected 0 (off) to {MAX_INTERVAL_S:g} s, got {interval:g}"
        )
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise UsageError(f"--metrics-port: expected 1-65535, got {args.metrics_port}")
    return MetricsSettings(
        interval_s=interval,
        discovery=args.metrics_discovery or "auto",
        metrics_port=args.metrics_port,
        target_labels=parse_label_selector(args.target_labels or ""),
        target_namespace=args.target_namespace or "default",
    )


def _exit_code(result: LoadResult) -> int:
    """Print the summary and the verdict line; 0 only when complete and every request ok."""
    print(result.summary_text, file=sys.stderr)
    if result.incomplete_reasons:
        print(
            f"load: incomplete run: {result.records} of {result.scheduled} scheduled requests "
            f"recorded ({'; '.join(result.incomplete_reasons)}); run.json says so",
            file=sys.stderr,
        )
        return 1
    if result.failed:
        print(f"load: {result.failed} of {result.records} requests failed", file=sys.stderr)
        return 1
    return 0


#: The probe's flags for `load.sweep` fields: `--sweep-<field>` (workflow knob `sweep_<field>`).
_SWEEP_FLAGS: dict[str, type] = {
    "type": SweepType,
    "num_requests": int,
    "timeout": float,
    "num_stages": int,
    "stage_duration": int,
    "saturation_percentile": float,
    "estimator": SweepEstimator,
}


def _with_sweep_flags(config: Config, args: argparse.Namespace) -> Config:
    """The config with the given `--sweep-*` flags set in `load.sweep` (created if absent)."""
    given = {f: getattr(args, f"sweep_{f}") for f in _SWEEP_FLAGS}
    given = {f: v for f, v in given.items() if v is not None}
    if not given:
        return config
    data = config.model_dump(mode="json")
    data["load"]["sweep"] = {**(data["load"]["sweep"] or {}), **given}
    return config_from_dict(data, "config with flag overrides")


def _probe_main(argv: list[str]) -> int:
    """`probe`: the load step's flags, `--sweep-*` for the sweep block, and the output
    parameters' directory."""

    def body() -> int:
        parser = _parser()
        parser.prog = "steps.load probe"
        parser.description = "Find the saturation rate of a load.sweep config; write its stages."
        for field, kind in _SWEEP_FLAGS.items():
            choices: list[Any] | None = [*kind, None] if issubclass(kind, StrEnum) else None
            parser.add_argument(
                "--sweep-" + field.replace("_", "-"),
                type=_opt(kind),
                choices=choices,
                help=f"load.sweep.{field}",
            )
        parser.add_argument(
            "--outputs-dir", type=_opt(Path), help="write the output parameters stages and "
            "saturation_rate here",
        )  # fmt: skip
        args = parser.parse_args(argv)
        configure_logging("load", args.log_level)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if args.load_pods not in (None, 1):
            raise UsageError("probe --load-pods: a probe runs in one pod")
        settings = _settings(args)
        settings = dataclasses.replace(settings, config=_with_sweep_flags(settings.config, args))
        result = probe(settings, args.outputs_dir)
        print(
            f"probe: saturation {result.saturation_rate:.2f} requests/s ({result.estimator}); "
            f"stages {result.spec}",
            file=sys.stderr,
        )
        return 0

    return run_main("load", body)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, run the load, return 0 (all ok), 1 (some failed / step failed), 2 (usage).

    `merge --out DIR` instead recovers a run whose main process was lost (steps.load.recover);
    `coordinate` runs the start coordinator of several load pods (steps.load.coordinator).
    """
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["merge"]:
        return recover_main(given[1:])
    if given[:1] == ["probe"]:
        return _probe_main(given[1:])
    if given[:1] == ["coordinate"]:
        return _coordinate(given[1:])

    def body() -> int:
        args = _parser().parse_args(argv)
        configure_logging("load", args.log_level)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # model_lookup logs the lookup
        return _exit_code(run(_settings(args)))

    return run_main("load", body)


def _coordinate(argv: list[str]) -> int:
    def body() -> int:
        args = _coordinate_parser().parse_args(argv)
        configure_logging("load", args.log_level)
        if args.load_pods < 2:
            raise UsageError(f"--load-pods {args.load_pods}: a coordinator needs at least 2")
        if not 0 < args.port < 65536:
            raise UsageError(f"--port {args.port}: not a TCP port")
        if args.start_lead_s <= 0 or args.deadline_s <= 0:
            raise UsageError("--start-lead-s and --deadline-s must be > 0")
        run_id = new_run_id() if args.run_id is None else _run_id(args)
        serve(args.port, args.load_pods, run_id, args.start_lead_s, args.deadline_s)
        return 0

    return run_main("load", body)


if __name__ == "__main__":
    sys.exit(main())
