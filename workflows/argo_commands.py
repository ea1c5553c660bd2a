"""`install` and `submit`: the commands of `python -m workflows.baseline` that talk to Argo Server.

`install` upserts the WorkflowTemplate (and the CronWorkflow); `submit` runs the installed
template with every parameter explicit, and never changes it silently: without
`--update-template` it compares first and names what differs. The HTTP session is a test seam
(a recording fake in tests); the connection follows the argo CLI's environment.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import requests
from hera.workflows import WorkflowsService

from steps.errors import BenchError, BreachError, UsageError
from workflows.chart_values import ChartMapping
from workflows.cli_args import (
    PROG,
    chart_values,
    env_namespace,
    given_knobs,
    given_options,
    resolve,
    resolve_options,
    resolve_params,
)
from workflows.cli_output import echo, print_verdict
from workflows.cron import build_cron, check_schedule
from workflows.graph_lint import require_clean
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.scenarios import CONFIG_DERIVED
from workflows.submit import (
    check_server_version,
    connection_from,
    installed_template,
    make_service,
    submit_from_template,
    upsert,
    wait_for,
)
from workflows.template import build_template
from workflows.template_diff import parameter_name_differences, summarize, template_differences

__all__ = ["install", "submit"]

#: Install options that only say WHICH template to use, not what it contains.
_LOCATING_OPTIONS = frozenset({"name", "namespace"})


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
    check_server_version(service, echo)
    return service


def _install_template(
    params: BaselineParams, options: TemplateOptions, service: WorkflowsService
) -> None:
    """Create or update the WorkflowTemplate (`install`, `submit --update-template`)."""
    template = build_template(params, options)
    require_clean(template.to_dict())
    upsert(template, service)
    print(f"installed WorkflowTemplate {options.namespace}/{options.name}")


def install(
    args: argparse.Namespace, environ: Mapping[str, str], session: requests.Session | None
) -> int:
    """Upsert the WorkflowTemplate, and the CronWorkflow with `--cron`."""
    params, options = resolve(args)
    options = env_namespace(args, options, environ)
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
    given = {**chart.params, **given_knobs(args)}
    # A new config brings its own derived knobs (stages, endpoint...): the installed template's
    # values of those came from the old config.
    stale = set(CONFIG_DERIVED) | {"config_name"} if "config" in given else set()
    base = {
        p["name"]: p.get("value", "")
        for p in declared
        if p.get("name") in BaselineParams.model_fields and p.get("name") not in stale
    }
    params = resolve_params(args, chart, base=base)
    wanted = build_template(params, options).to_dict()
    require_clean(wanted)
    changes = set(given_options(args, chart)) - _LOCATING_OPTIONS
    if "target_labels" in given:
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


def submit(
    args: argparse.Namespace, environ: Mapping[str, str], session: requests.Session | None
) -> int:
    """Run the installed template; with `--wait`, follow it and exit on its verdict."""
    chart = chart_values(args)
    # Validate every knob and option before any request.
    params = resolve_params(args, chart)
    options = env_namespace(args, resolve_options(args, chart, params.scenario), environ)
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
    outcome = wait_for(name, service, echo, poll_s=args.poll_interval)
    print_verdict(outcome.phase, outcome.report, outcome.message)
    if outcome.phase == "Succeeded":
        return 0
    return BreachError.exit_code if outcome.report.get("verdict") == "fail" else 1
