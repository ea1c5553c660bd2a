"""Checks on the run itself, before any threshold: did the load step finish, is every request there.

An SLA on a partial run measures the wrong thing (a killed worker's share simply has no latency),
so the verdict fails whenever the load step failed or the run is incomplete, whatever the
thresholds say. Two inputs: the load step's exit code as Argo reports it (`--load-exit-code`) and
the completeness the load step wrote into run.json (`complete`, carried by aggregate into
summary.json's `run` section; see steps/CONTRACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from steps.summary_model import RunSection

__all__ = ["RunCheck", "check_run"]


@dataclass(frozen=True)
class RunCheck:
    """One check's outcome; `detail` says why, in words the report and the exit line print."""

    name: str
    passed: bool
    detail: str


def _completeness(run: RunSection) -> str:
    """'recorded R of S scheduled requests (reasons)' from the run section, for failure lines."""
    text = f"recorded {run.recorded_requests} of {run.scheduled_requests} scheduled requests"
    if run.incomplete_reasons:
        text += f" ({'; '.join(run.incomplete_reasons)})"
    return text


def _load_check(exit_code: str, complete: bool | None, run: RunSection) -> RunCheck:
    if exit_code == "0":
        return RunCheck("load", True, "load step exited 0")
    if exit_code == "1":
        if complete is True:
            return RunCheck(
                "load", True, "load step exited 1: some requests failed (judged by error_rate)"
            )
        why = _completeness(run) if complete is False else "run.json does not say it is complete"
        return RunCheck("load", False, f"load step exited 1 and the run is incomplete: {why}")
    return RunCheck(
        "load",
        False,
        f"load step exited {exit_code!r} (usage error, crash, out of memory or killed): "
        "its results are not a full measurement",
    )


def check_run(load_exit_code: str | None, run: RunSection) -> list[RunCheck]:
    """The load step's outcome (when known) and the run's completeness (when recorded).

    `load_exit_code` None = unknown (run outside Argo): no load check. Exit 1 passes only for a
    complete run: the load step exits 1 when some requests failed, and those are rows the
    error-rate limit judges; any other code (>= 2, or Argo's text for a killed pod) fails.
    """
    complete = run.complete
    checks = []
    if load_exit_code is not None:
        checks.append(_load_check(load_exit_code, complete, run))
    if complete is not None:
        detail = "every scheduled request is a record" if complete else _completeness(run)
        stopped = run.stopped_early()
        checks.append(RunCheck("complete", complete, f"{detail}; {stopped}" if stopped else detail))
    return checks
