"""`python -m workflows.baseline run`: the rendered DAG on this machine, no cluster.

Without `--base-url` the built-in simulator stands in for the model server (with the offline
Qwen tokenizer, so its prompt token counts are exact) and the Kubernetes check is off; without
`--s3-endpoint-url`/`--bucket` nothing is uploaded. The WorkflowTemplate Argo would get is
built, linted and handed to the local runner (workflows.local_runner). The exit code is the
report step's; a DAG that reaches no verdict names every failed task, the load first.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steps.errors import BenchError, UsageError
from steps.names import new_run_id
from steps.shared import K8sCheck
from steps.stage_spec import format_stages, parse_stages
from workflows.chart_values import load_values, map_values
from workflows.cli_args import given_knobs, resolve
from workflows.cli_output import echo, make_output_dir, print_verdict
from workflows.graph_lint import require_clean
from workflows.local_process import default_lock_dir, free_port, stop_process
from workflows.local_runner import RunnerEnv, RunResult, run_template
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.scenarios import SCENARIOS
from workflows.template import build_template

__all__ = ["run_locally", "start_simulator"]

#: Where `run` finds the `steps` package for its subprocesses (this checkout).
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The built-in simulator's port when it is free. A fixed port keeps its base URL, and so the
#: run history, the same from one local run to the next: the report compares a run only with
#: earlier runs against the same base_url.
SIMULATOR_PORT = 18080


def start_simulator(
    model_name: str, environ: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the built-in simulator with the offline Qwen tokenizer, so the prompt_tokens it
    reports are exact (without a tokenizer it can only estimate text prompts). Returns the
    process and its base URL."""
    tokenizer_dir = workdir / "simulator-tokenizer"
    fetch = [sys.executable, "-m", "steps.tokenizer", "--tokenizer", "offline:qwen"]
    fetch += ["--out", str(tokenizer_dir), "--log-level", "WARNING"]
    if subprocess.run(fetch, env=environ, stdout=subprocess.DEVNULL).returncode != 0:
        raise BenchError("run: could not build the simulator's offline Qwen tokenizer (see above)")
    port = _simulator_port()
    argv = [sys.executable, "-m", "steps.simulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--model", model_name, "--seed", "0", "--tokenizer", str(tokenizer_dir)]
    proc = subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL)
    echo(f"started the built-in simulator on 127.0.0.1:{port} (model {model_name})")
    return proc, f"http://127.0.0.1:{port}"


def _simulator_port() -> int:
    """SIMULATOR_PORT when it is free, else any free port (this run then starts a history of
    its own, and says so)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", SIMULATOR_PORT))
        except OSError:
            echo(
                f"port {SIMULATOR_PORT} is taken: the simulator's runs on another port have "
                "no earlier runs to be compared with"
            )
            return free_port()
    return SIMULATOR_PORT


def _step_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The steps' environment: this one, with this checkout importable."""
    step_env = dict(environ)
    # As in the images: the steps use tokenizers only, torch's absence is not news.
    step_env.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    step_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), environ.get("PYTHONPATH", "")) if p
    )
    return step_env


def _local_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """Knobs a local run decides when the user did not: the simulator's (no Kubernetes
    check, the offline tokenizer) without --base-url, no upload without an S3 target."""
    extra: dict[str, Any] = {}
    if "base_url" not in given:
        extra = {
            "k8s_check": K8sCheck.off.value,
            "tokenizer": given.get("tokenizer", "offline:qwen"),
        }
    if not given.get("s3_endpoint_url") and "bucket" not in given:
        extra["bucket"] = ""
    return extra


def _run_dag(
    params: BaselineParams,
    options: TemplateOptions,
    use_simulator: bool,
    step_env: dict[str, str],
    out: Path,
) -> RunResult:
    """Build the template Argo would get (against the simulator, started here, when
    `use_simulator`) and run it with the local runner."""
    simulator: subprocess.Popen[bytes] | None = None
    try:
        if use_simulator:
            simulator, base_url = start_simulator(params.model_name, step_env, out)
            params = params.model_copy(update={"base_url": base_url})
        template = build_template(params, options).to_dict()
        require_clean(template)
        env = RunnerEnv(
            python_executable=sys.executable,
            environ=step_env,
            echo=echo,
            lock_dir=default_lock_dir(),
        )
        return run_template(template, params.to_arguments(), out.resolve(), env)
    finally:
        if simulator is not None:
            stop_process(simulator)


def _shortened(params: BaselineParams, seconds: int) -> str:
    """The scenario's stage spec with every stage `seconds` long (`run --stage-duration`)."""
    if params.stages is None:
        raise UsageError(
            f"--stage-duration: scenario {params.scenario.value} has no stages (use --duration)"
        )
    if seconds < 1:
        raise UsageError(f"--stage-duration {seconds}: needs at least 1 second")
    return format_stages([(rate, seconds) for rate, _ in parse_stages(params.stages)])


def run_locally(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The `run` command: validate, run the DAG, print the verdict; the report's exit code."""
    chart = map_values(load_values(args.values, args.set), getattr(args, "knob_scenario", None))
    given = {**chart.params, **given_knobs(args)}
    extra = _local_defaults(given)
    # Validate every knob before anything starts: bad input costs no simulator and no directory.
    params, options = resolve(args, extra)
    if args.stage_duration is not None:
        shorter = (
            {"sweep_stage_duration": args.stage_duration}
            if SCENARIOS[params.scenario].swept
            else {"stages": _shortened(params, args.stage_duration)}
        )
        params, options = resolve(args, {**extra, **shorter})
    if "bucket" in extra:
        echo("S3 upload off (give --s3-endpoint-url and --bucket to upload)")
    out = args.out or Path("results") / new_run_id()  # the load step's shape: dirs sort by time
    make_output_dir(out, "--out")
    use_simulator = "base_url" not in given
    result = _run_dag(params, options, use_simulator, _step_environ(environ), out)
    report = result.tasks.get("report")
    print_verdict(result.phase, report.outputs if report else {})
    print(f"results: {out}")
    if report is not None and report.exit_code is not None:
        return report.exit_code
    # No verdict: every failed task in DAG order, the load's own failure first (the real cause
    # when it wrote nothing and aggregate failed on the missing records).
    failed = [t for t in result.tasks.values() if t.phase == "Failed"]
    detail = "; ".join(f"{t.name}: {t.message or 'failed'}" for t in failed) or "no report"
    raise BenchError(f"run: the DAG did not reach a verdict ({detail})")
