"""The flags of `python -m workflows.baseline` and how they resolve into knobs and options.

Every knob of `BaselineParams` is a `--<knob>` flag (underscores become dashes) on every
command, every install option of `TemplateOptions` a flag of its own; both default to
"not given" (argparse.SUPPRESS), so only what a user typed overrides the values below it:
defaults < the installed template's values (submit) < chart values (-f, --set) < flags.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from steps.cli import make_parser, read_input_text
from steps.errors import UsageError
from steps.names import check_scenario_name
from workflows.chart_values import ChartMapping, load_values, map_values
from workflows.cli_output import echo
from workflows.options import TemplateOptions
from workflows.params import BaselineParams, params_from_mapping
from workflows.scenarios import ScenarioName, template_name

__all__ = [
    "ALL_KINDS",
    "DEFAULT_SCHEDULE",
    "KINDS",
    "OPTION_FLAGS",
    "PROG",
    "SIMULATOR_KIND",
    "build_parser",
    "chart_values",
    "env_namespace",
    "given_knobs",
    "given_options",
    "resolve",
    "resolve_options",
    "resolve_params",
]

PROG = "workflows.baseline"
DESCRIPTION = (
    f"`python -m {PROG} render|install|submit|run`: the baseline benchmark as an Argo DAG."
)
KINDS = ("template", "cron", "workflow", "rbac")
#: What `--kind all` renders: objects `kubectl apply` and a GitOps sync can own. Never the
#: generateName Workflow (apply refuses it; a sync would start a run each time).
ALL_KINDS = ("template", "cron", "rbac")
#: Rendered on request only, never by `--kind all`: a GPU-free target for a first in-cluster run.
SIMULATOR_KIND = "simulator"
DEFAULT_SCHEDULE = "0 3 * * *"
OPTION_FLAGS = {
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
    "load_pods": "--load-pods",
}


def _add_knobs(parser: argparse.ArgumentParser) -> None:
    knobs = parser.add_argument_group("benchmark knobs (= workflow parameters)")
    enums = BaselineParams.enums()
    defaults = BaselineParams().to_arguments()
    for name, field in BaselineParams.model_fields.items():
        default = repr(defaults[name]) if name in defaults else "the scenario's"
        knobs.add_argument(
            "--" + name.replace("_", "-"),
            dest="knob_" + name,
            default=argparse.SUPPRESS,
            choices=enums.get(name),
            metavar="FILE" if name == "config" else None,
            help=f"{field.description} (default: {default})",
        )
    chart = parser.add_argument_group("benchmark chart values layout")
    chart.add_argument("-f", "--values", action="append", default=[], type=Path, metavar="FILE")
    chart.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    options = parser.add_argument_group("install options")
    for option, flag in OPTION_FLAGS.items():
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


def build_parser() -> argparse.ArgumentParser:
    """The four commands with their flags; usage errors raise UsageError (exit 2)."""
    parser = make_parser(f"python -m {PROG}", DESCRIPTION)
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
    run.add_argument(
        "--stage-duration",
        type=int,
        metavar="SECONDS",
        help="a staged scenario's stages at their rates but this many seconds each (a quick look)",
    )
    for sub in (render, install, submit, run):
        _add_knobs(sub)
    for sub in (install, submit):
        _add_argo(sub)
    return parser


def given_knobs(args: argparse.Namespace) -> dict[str, Any]:
    """The knob flags a user typed, by knob name. `--config FILE` is read: the knob is the
    file's text, and names the runs (`config_name`) after the file unless given."""
    knobs = {k.removeprefix("knob_"): v for k, v in vars(args).items() if k.startswith("knob_")}
    if "config" in knobs:
        path = Path(knobs["config"])
        knobs["config"] = read_input_text(path, "--config")
        with contextlib.suppress(ValueError):  # a stem that is no name keeps the default
            knobs.setdefault("config_name", check_scenario_name(path.stem))
    return knobs


def chart_values(args: argparse.Namespace) -> ChartMapping:
    """The chart values of `-f`/`--set`; values with no effect here are named on stderr."""
    chart = map_values(load_values(args.values, args.set), getattr(args, "knob_scenario", None))
    if chart.ignored:
        echo(f"chart values with no effect here: {', '.join(chart.ignored)}")
    return chart


def resolve_params(
    args: argparse.Namespace,
    chart: ChartMapping,
    extra: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> BaselineParams:
    """Defaults < `base` (submit: the installed template's values) < chart values (-f, --set)
    < knob flags < `extra` (what `run` decides)."""
    knobs = {**(base or {}), **chart.params, **given_knobs(args), **(extra or {})}
    return params_from_mapping(knobs, "parameters")


def given_options(args: argparse.Namespace, chart: ChartMapping) -> dict[str, Any]:
    """The install options given by chart values or flags (flags win)."""
    return {
        **chart.options,
        **{k.removeprefix("opt_"): v for k, v in vars(args).items() if k.startswith("opt_")},
    }


def resolve_options(
    args: argparse.Namespace, chart: ChartMapping, scenario: ScenarioName
) -> TemplateOptions:
    """Install options, validated; errors name the option and its flag. The template's name
    is the scenario's (`--name` for the baseline, `<name>-<scenario>` for another)."""
    try:
        options = TemplateOptions.model_validate(given_options(args, chart))
        return options.model_copy(update={"name": template_name(options.name, scenario)})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "(root)"
        flag = f" ({OPTION_FLAGS[name]})" if name in OPTION_FLAGS else ""
        raise UsageError(
            f"install options: {name}{flag}: {err['msg']} (got {err.get('input')!r})"
        ) from None


def env_namespace(
    args: argparse.Namespace, options: TemplateOptions, environ: Mapping[str, str]
) -> TemplateOptions:
    """ARGO_NAMESPACE, as for the argo CLI, unless --namespace was given."""
    if not hasattr(args, "opt_namespace") and environ.get("ARGO_NAMESPACE"):
        return options.model_copy(update={"namespace": environ["ARGO_NAMESPACE"]})
    return options


def resolve(
    args: argparse.Namespace, extra: Mapping[str, Any] | None = None
) -> tuple[BaselineParams, TemplateOptions]:
    """Knobs (see `resolve_params`) and install options, both validated before anything runs."""
    chart = chart_values(args)
    params = resolve_params(args, chart, extra)
    return params, resolve_options(args, chart, params.scenario)
