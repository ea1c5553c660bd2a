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

This module only dispatches: flags and knob resolution in workflows.cli_args, the commands in
workflows.render, workflows.argo_commands (install, submit) and workflows.local_run (run).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import requests

from steps.cli import run_main
from workflows.argo_commands import install, submit
from workflows.cli_args import PROG, build_parser
from workflows.local_run import run_locally
from workflows.render import render

__all__ = ["main"]


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> int:
    """CLI entry point; returns the exit code. `environ`/`session` are test seams (the HTTP
    session Hera's service uses: a recording fake in tests)."""
    env = os.environ if environ is None else environ

    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.command == "render":
            return render(args)
        if args.command == "install":
            return install(args, env, session)
        if args.command == "submit":
            return submit(args, env, session)
        return run_locally(args, env)

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
