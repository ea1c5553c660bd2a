"""`python -m workflows.baseline render`: the manifests as YAML, to stdout or one file per kind."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from workflows.cli_args import ALL_KINDS, SIMULATOR_KIND, resolve
from workflows.cli_output import echo, write_output
from workflows.cron import build_cron
from workflows.graph_lint import require_clean
from workflows.rbac import build_rbac
from workflows.simulator_target import build_simulator_target
from workflows.template import build_template, build_workflow

__all__ = ["render"]


def render(args: argparse.Namespace) -> int:
    """Write the `--kind` manifests (linted first) to stdout or `-o DIR/<kind>.yaml`."""
    params, options = resolve(args)
    template = build_template(params, options).to_dict()
    workflow = build_workflow(params, options).to_dict()
    cron = build_cron(params, options, args.cron, args.timezone).to_dict()
    require_clean(template, workflow["spec"], cron["spec"]["workflowSpec"])
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
            write_output(args.output_dir / f"{kind}.yaml", text, "-o")
            echo(f"wrote {args.output_dir / f'{kind}.yaml'}")
    return 0
