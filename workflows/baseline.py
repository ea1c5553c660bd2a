"""`python -m workflows.baseline render|install|submit|run`: the baseline benchmark as an Argo DAG.

    render  [--kind template|cron|workflow|rbac|simulator] [-o DIR]   YAML for GitOps
    install [--cron "0 3 * * *"]                             upsert the template (and the cron)
    submit  [--wait] [--update-template]                     run the installed template on Argo
    run     [--out DIR]                                      run the same DAG on this machine

Knobs come from `--<knob>` flags (`--base-url`, `--rate`, ...; one name per knob, see
`workflows.params`), and from the benchmark chart's values layout (`-f values.yaml`,
`--set benchmark.target.baseUrl=...`); flags win over values files. Exit codes: 0 ok (verdict
pass, or a breach without fail_on_breach), 1 failure, 2 bad usage, 3 SLA/regression breach with
fail_on_breach (the report step's own code for `run`).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml
from hera.workflows import WorkflowsService
from pydantic import ValidationError

from steps.cli import make_parser, run_main
from steps.errors import BenchError, BreachError, UsageError
from steps.names import new_run_id
from steps.shared import K8sCheck
from workflows.chart_values import ChartMapping, load_values, map_values
from workflows.cron import build_cron, check_schedule
from workflows.graph_lint import lint_run, lint_template
from workflows.local_runner import RunnerEnv, default_lock_dir, run_template
from workflows.options import TemplateOptions
from workflows.params import BaselineParams, params_from_mapping
from workflows.rbac import build_rbac
from workflows.simulator_target import build_simulator_target
from workflows.submit import (
    check_server_version,
    connection_from,
    installed_template,
    make_service,
    submit_from_template,
    upsert,
    wait_for,
)
from workflows.template import build_template, build_workflow
from workflows.template_diff import parameter_name_differences, summarize, template_differences

__all__ = ["main"]

PROG = "workflows.baseline"
KINDS = ("template", "cron", "workflow", "rbac")
#: What `--kind all` renders: objects `kubectl apply` and a GitOps sync can own. Never the
#: generateName Workflow (apply refuses it; a sync would start a run each time).
ALL_KINDS = ("template", "cron", "rbac")
#: Rendered on request only, never by `--kind all`: a GPU-free target for a first in-cluster run.
SIMULATOR_KIND = "simulator"
DEFAULT_SCHEDULE = "0 3 * * *"
#: Where `run` finds the `steps` package for its subprocesses (this checkout).
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
_OPTION_FLAGS = {
    "name": "--name",
    "namespace": "--namespace",
    "image_registry": "--image-registry",
    "image_tag": "--image-tag",
    "service_account": "--service-account",
    "artifact_repository_configmap": "--artifact-repository-configmap",
    "artifact_repository_key": "--artifact-repository-key",
    "hf_token_secret": "--hf-token-secret",
    "api_key_secret": "--api-key-secret",
    "ca_bundle_configmap": "--ca-bundle-configmap",
    "ca_bundle_key": "--ca-bundle-key",
    "workflow_deadline_s": "--workflow-deadline-s",
    "zone_affinity": "--zone-affinity",
}


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _make_output_dir(path: Path, flag: str) -> None:
    """Create an output directory, or refuse in one line: a file in the way, no permission."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # FileExistsError for a file, NotADirectoryError, PermissionError
        raise UsageError(f"{flag} {path}: cannot use it as a directory ({exc.strerror})") from None


def _write_output(path: Path, text: str, flag: str) -> None:
    """Write one rendered file into the `flag` directory, or refuse in one line."""
    _make_output_dir(path.parent, flag)
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(
            f"{flag} {path.parent}: cannot write {path.name} ({exc.strerror})"
        ) from None


# ---------------------------------------------------------------------------------------------
# Arguments


def _add_knobs(parser: argparse.ArgumentParser) -> None:
    knobs = parser.add_argument_group("benchmark knobs (= workflow parameters)")
    enums = BaselineParams.enums()
    for name, field in BaselineParams.model_fields.items():
        knobs.add_argument(
            "--" + name.replace("_", "-"),
            dest="knob_" + name,
            default=argparse.SUPPRESS,
            choices=enums.get(name),
            help=f"{field.description} (default: {BaselineParams().to_arguments()[name]!r})",
        )
    chart = parser.add_argument_group("benchmark chart values layout")
    chart.add_argument("-f", "--values", action="append", default=[], type=Path, metavar="FILE")
    chart.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    options = parser.add_argument_group("install options")
    for option, flag in _OPTION_FLAGS.items():
        options.add_argument(
            flag,
            dest="opt_" + option,
            default=argparse.SUPPRESS,
            help=TemplateOptions.model_fields[option].description,
        )


def _add_argo(parser: argparse.ArgumentParser) -> None:
    argo = parser.add_argument_group("Argo Server (default: the argo CLI's environment)")
    argo.add_argument("--argo-server", help="host:port or URL (ARGO_SERVER)")
    argo.add_argument("--argo-base-href", help="path prefix, e.g. /argo/ (ARGO_BASE_HREF)")
    argo.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        default=None,
        help="skip TLS verification (ARGO_INSECURE_SKIP_VERIFY)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(f"python -m {PROG}", __doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="write the manifests as YAML")
    render.add_argument("--kind", choices=[*KINDS, SIMULATOR_KIND, "all"], default="template")
    render.add_argument("-o", "--output-dir", type=Path, help="write <kind>.yaml files here")
    render.add_argument("--cron", default=DEFAULT_SCHEDULE, help="schedule of --kind cron")
    render.add_argument("--timezone", default="UTC", help="timezone of the cron schedule")
    install = commands.add_parser("install", help="create or update the WorkflowTemplate")
    install.add_argument("--cron", help='also install the CronWorkflow, e.g. "0 3 * * *"')
    install.add_argument("--timezone", default="UTC", help="timezone of the cron schedule")
    submit = commands.add_parser("submit", help="run the installed template on Argo")
    submit.add_argument("--wait", action="store_true", help="follow the run to its verdict")
    submit.add_argument(
        "--update-template",
        action="store_true",
        help="install (replace) the template first: cron and UI runs use it from then on",
    )
    submit.add_argument(
        "--poll-interval", type=float, default=10.0, help="seconds between --wait polls"
    )
    run = commands.add_parser("run", help="run the DAG on this machine (no cluster)")
    run.add_argument("--out", type=Path, help="results directory (default ./results/<run id>)")
    for sub in (render, install, submit, run):
        _add_knobs(sub)
    for sub in (install, submit):
        _add_argo(sub)
    # make_parser's error() raises UsageError; sub-parsers must do the same.
    for sub in (render, install, submit, run):
        sub.error = parser.error  # type: ignore[method-assign]
    return parser


def _given_knobs(args: argparse.Namespace) -> dict[str, Any]:
    return {k.removeprefix("knob_"): v for k, v in vars(args).items() if k.startswith("knob_")}


def _chart_values(args: argparse.Namespace) -> ChartMapping:
    chart = map_values(load_values(args.values, args.set))
    if chart.ignored:
        _echo(f"chart values with no effect here: {', '.join(chart.ignored)}")
    return chart


def _params(
    args: argparse.Namespace,
    chart: ChartMapping,
    extra: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> BaselineParams:
    """Defaults < `base` (submit: the installed template's values) < chart values (-f, --set)
    < knob flags < `extra` (what `run` decides)."""
    knobs = {**(base or {}), **chart.params, **_given_knobs(args), **(extra or {})}
    return params_from_mapping(knobs, "parameters")


def _given_options(args: argparse.Namespace, chart: ChartMapping) -> dict[str, Any]:
    return {
        **chart.options,
        **{k.removeprefix("opt_"): v for k, v in vars(args).items() if k.startswith("opt_")},
    }


def _options(args: argparse.Namespace, chart: ChartMapping) -> TemplateOptions:
    try:
        return TemplateOptions.model_validate(_given_options(args, chart))
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "(root)"
        flag = f" ({_OPTION_FLAGS[name]})" if name in _OPTION_FLAGS else ""
        raise UsageError(
            f"install options: {name}{flag}: {err['msg']} (got {err.get('input')!r})"
        ) from None


def _resolve(
    args: argparse.Namespace, extra: Mapping[str, Any] | None = None
) -> tuple[BaselineParams, TemplateOptions]:
    """Knobs (see `_params`) and install options, both validated before anything runs."""
    chart = _chart_values(args)
    return _params(args, chart, extra), _options(args, chart)


def _check(template: dict[str, Any], *runs: dict[str, Any]) -> None:
    """Refuse to emit a manifest the graph lint rejects (a bug here, not a user error)."""
    problems = lint_template(template) + [p for run in runs for p in lint_run(run, template)]
    if problems:
        raise BenchError(f"manifest lint: {'; '.join(problems)}")


# ---------------------------------------------------------------------------------------------
# Commands


def _render(args: argparse.Namespace) -> int:
    params, options = _resolve(args)
    template = build_template(params, options).to_dict()
    workflow = build_workflow(params, options).to_dict()
    cron = build_cron(params, options, args.cron, args.timezone).to_dict()
    _check(template, workflow["spec"], cron["spec"]["workflowSpec"])
    documents: dict[str, list[dict[str, Any]]] = {
        "template": [template],
        "cron": [cron],
        "workflow": [workflow],
        "rbac": build_rbac(params, options),
    }
    if args.kind == SIMULATOR_KIND:
        documents[SIMULATOR_KIND] = build_simulator_target(params, options)
    kinds = ALL_KINDS if args.kind == "all" else (args.kind,)
    for kind in kinds:
        text = yaml.safe_dump_all(documents[kind], sort_keys=False)
        if args.output_dir is None:
            sys.stdout.write(text if len(kinds) == 1 else "---\n" + text)
        else:
            _write_output(args.output_dir / f"{kind}.yaml", text, "-o")
            _echo(f"wrote {args.output_dir / f'{kind}.yaml'}")
    return 0


def _service(
    args: argparse.Namespace,
    options: TemplateOptions,
    environ: Mapping[str, str],
    session: requests.Session | None,
) -> WorkflowsService:
    """Hera's service for Argo Server, refused when the server is older than the manifests need."""
    connection = connection_from(
        environ,
        server=args.argo_server,
        namespace=options.namespace,
        base_href=args.argo_base_href,
        insecure_skip_verify=args.insecure_skip_verify,
        default_namespace=options.namespace,
    )
    service = make_service(connection, session)
    check_server_version(service, _echo)
    return service


def _env_namespace(
    args: argparse.Namespace, options: TemplateOptions, environ: Mapping[str, str]
) -> TemplateOptions:
    if not hasattr(args, "opt_namespace") and environ.get("ARGO_NAMESPACE"):
        return options.model_copy(update={"namespace": environ["ARGO_NAMESPACE"]})
    return options


def _install_template(
    params: BaselineParams, options: TemplateOptions, service: WorkflowsService
) -> None:
    """Create or update the WorkflowTemplate (`install`, `submit --update-template`)."""
    template = build_template(params, options)
    _check(template.to_dict())
    upsert(template, service)
    print(f"installed WorkflowTemplate {options.namespace}/{options.name}")


def _install(
    args: argparse.Namespace, environ: Mapping[str, str], session: requests.Session | None
) -> int:
    params, options = _resolve(args)
    options = _env_namespace(args, options, environ)
    options.require_published_images()
    if args.cron:
        check_schedule(args.cron)  # before anything is installed
    service = _service(args, options, environ, session)
    _install_template(params, options, service)
    if args.cron:
        cron = build_cron(params, options, args.cron, args.timezone)
        upsert(cron, service)
        print(
            f"installed CronWorkflow {options.namespace}/{cron.name} ({args.cron} {args.timezone})"
        )
    return 0


#: Install options that only say WHICH template to use, not what it contains.
_LOCATING_OPTIONS = frozenset({"name", "namespace"})


def _params_for_installed(
    args: argparse.Namespace,
    chart: ChartMapping,
    options: TemplateOptions,
    service: WorkflowsService,
) -> BaselineParams:
    """Knobs for a submit that must not change the installed template: unset knobs take the
    installed template's values (what a UI run would use), and the template this submit would
    install must equal the installed one in everything a run takes from it. Install options
    not given are the installed ones; a submit that gives some (or --target-labels, which is
    baked into the load pod's affinity) is compared in full."""
    where = f"{options.namespace}/{options.name}"
    installed = installed_template(options.name, service)
    if installed is None:
        raise UsageError(
            f"submit: WorkflowTemplate {where} is not installed: run `python -m {PROG} install` "
            "first (or submit --update-template)"
        )
    declared = installed.get("spec", {}).get("arguments", {}).get("parameters", [])
    base = {
        p["name"]: p.get("value", "")
        for p in declared
        if p.get("name") in BaselineParams.model_fields
    }
    params = _params(args, chart, base=base)
    wanted = build_template(params, options).to_dict()
    _check(wanted)
    changes = set(_given_options(args, chart)) - _LOCATING_OPTIONS
    if "target_labels" in {**chart.params, **_given_knobs(args)}:
        changes.add("target_labels")
    differences = (
        template_differences(installed, wanted)
        if changes
        else parameter_name_differences(installed, wanted)
    )
    if differences:
        raise BenchError(
            f"submit: the installed WorkflowTemplate {where} differs from what this submit would "
            f"install ({summarize(differences)}): pass --update-template to replace it (cron "
            "and UI runs then use it too), or run `install` with the settings you want"
        )
    return params


def _submit(
    args: argparse.Namespace, environ: Mapping[str, str], session: requests.Session | None
) -> int:
    chart = _chart_values(args)
    # Validate every knob and option before any request.
    params = _params(args, chart)
    options = _env_namespace(args, _options(args, chart), environ)
    if args.update_template:
        options.require_published_images()
    service = _service(args, options, environ, session)
    if args.update_template:
        _install_template(params, options, service)
    else:
        params = _params_for_installed(args, chart, options, service)
    name = submit_from_template(options.name, params, service)
    print(f"submitted {options.namespace}/{name}")
    print(service.get_workflow_link(name))
    if not args.wait:
        return 0
    outcome = wait_for(name, service, _echo, poll_s=args.poll_interval)
    _print_verdict(outcome.phase, outcome.report, outcome.message)
    if outcome.phase == "Succeeded":
        return 0
    return BreachError.exit_code if outcome.report.get("verdict") == "fail" else 1


def _print_verdict(phase: str, report: Mapping[str, str], message: str = "") -> None:
    print(f"phase: {phase}{f' ({message})' if message else ''}")
    if not report:
        print("verdict: none (the report step did not finish)")
        return
    print(f"verdict: {report.get('verdict', '')}")
    for key in ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "error_rate"):
        print(f"  {key}: {report.get(key, '')}")
    if report.get("report_uri"):
        print(f"report: {report['report_uri']}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_simulator(
    model_name: str, environ: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the built-in simulator with the offline Qwen tokenizer, so the prompt_tokens it
    reports are exact (without a tokenizer it can only estimate text prompts)."""
    tokenizer_dir = workdir / "simulator-tokenizer"
    fetch = [sys.executable, "-m", "steps.tokenizer", "--tokenizer", "offline:qwen"]
    fetch += ["--out", str(tokenizer_dir), "--log-level", "WARNING"]
    if subprocess.run(fetch, env=environ, stdout=subprocess.DEVNULL).returncode != 0:
        raise BenchError("run: could not build the simulator's offline Qwen tokenizer (see above)")
    port = _free_port()
    argv = [sys.executable, "-m", "steps.simulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--model", model_name, "--seed", "0", "--tokenizer", str(tokenizer_dir)]
    proc = subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL)
    _echo(f"started the built-in simulator on 127.0.0.1:{port} (model {model_name})")
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Terminate, then kill after `grace_s`: a hung simulator must not outlive the run."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    given = {**map_values(load_values(args.values, args.set)).params, **_given_knobs(args)}
    step_env = dict(environ)
    # As in the images: the steps use tokenizers only, torch's absence is not news.
    step_env.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    step_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), environ.get("PYTHONPATH", "")) if p
    )
    extra: dict[str, Any] = {}
    use_simulator = "base_url" not in given
    if use_simulator:
        extra = {
            "k8s_check": K8sCheck.off.value,
            "tokenizer": given.get("tokenizer", "offline:qwen"),
        }
    if not given.get("s3_endpoint_url") and "bucket" not in given:
        extra["bucket"] = ""
    # Validate every knob before anything starts: bad input costs no simulator and no directory.
    params, options = _resolve(args, extra)
    if "bucket" in extra:
        _echo("S3 upload off (give --s3-endpoint-url and --bucket to upload)")
    out = args.out or Path("results") / new_run_id()  # the load step's shape: dirs sort by time
    _make_output_dir(out, "--out")
    simulator: subprocess.Popen[bytes] | None = None
    try:
        if use_simulator:
            simulator, base_url = _start_simulator(params.model_name, step_env, out)
            params = params.model_copy(update={"base_url": base_url})
        template = build_template(params, options).to_dict()
        _check(template)
        env = RunnerEnv(
            python_executable=sys.executable,
            environ=step_env,
            echo=_echo,
            lock_dir=default_lock_dir(),
        )
        result = run_template(template, params.to_arguments(), out.resolve(), env)
    finally:
        if simulator is not None:
            _stop(simulator)
    report = result.tasks.get("report")
    _print_verdict(result.phase, report.outputs if report else {})
    print(f"results: {out}")
    if report is not None and report.exit_code is not None:
        return report.exit_code
    # No verdict: every failed task in DAG order, the load's own failure first (the real cause
    # when it wrote nothing and aggregate failed on the missing records).
    failed = [t for t in result.tasks.values() if t.phase == "Failed"]
    detail = "; ".join(f"{t.name}: {t.message or 'failed'}" for t in failed) or "no report"
    raise BenchError(f"run: the DAG did not reach a verdict ({detail})")


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> int:
    """CLI entry point; returns the exit code. `environ`/`session` are test seams (the HTTP
    session Hera's service uses: a recording fake in tests)."""
    env = os.environ if environ is None else environ

    def body() -> int:
        args = _parser().parse_args(argv)
        if args.command == "render":
            return _render(args)
        if args.command == "install":
            return _install(args, env, session)
        if args.command == "submit":
            return _submit(args, env, session)
        return _run(args, env)

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
