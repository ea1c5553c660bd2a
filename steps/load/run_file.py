"""run.json: what a load run was (steps/CONTRACTS.md) and how complete its records are.

Written at t0 already, marked unfinished, rewritten as each stage starts and once more at the
end: a main process killed mid-run still leaves the stage windows and the scheduled count beside
its part files, which `python -m steps.load merge` (`steps.load.recover`) turns into a run.
Every write is atomic (a temporary name, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from steps.load.plan import LoadSettings
from steps.load.pod_link import NO_OFFSET, ClockOffset
from steps.records import RUN_FILE, merge_command
from steps.redact import redact_tree

__all__ = ["RunFile", "iso_utc", "write_run_file"]

log = logging.getLogger(__name__)


def iso_utc(wall_ns: int) -> str:
    """Epoch ns as ISO-8601 UTC with milliseconds (`...Z`)."""
    return (
        datetime.fromtimestamp(wall_ns / 1e9, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _tool_version() -> str:
    try:
        return metadata.version("llm-baseline-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


def write_run_file(out_dir: Path, doc: dict[str, Any]) -> None:
    """Write `out_dir`/run.json atomically (temp name, then rename): never half a file."""
    path = out_dir / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


@dataclass
class RunFile:
    """run.json as the main process keeps it between writes.

    `t0`/`wall_start` are set when the run starts (monotonic and epoch ns of t0; with several
    pods on the coordinator's clock); `stages` grows by one row as each stage starts and gets
    its `end_ns` when it ends (ns since t0). `clock` is this pod's offset against the
    coordinator (zero with one pod).
    """

    settings: LoadSettings
    model: str
    scheduled: int
    clock: ClockOffset = NO_OFFSET
    t0: int = 0
    wall_start: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)
    dataset: dict[str, Any] | None = None  # data.type shareGPT: the file read (sha256) and how
    #: The scraper's stats (steps.load.scrape), set when it stopped; None: off or not yet.
    server_metrics: dict[str, Any] | None = None
    early_stop: dict[str, Any] | None = None  # load.early_stop: its limit, where it stopped

    def write_unfinished(self) -> None:
        """run.json as it stands mid-run; a failed write only loses the recovery aid."""
        merge = merge_command(self.settings.out_dir)
        unfinished = {
            "complete": False,
            "scheduled_requests": self.scheduled,
            "recorded_requests": None,
            "missing_requests": None,
            "interrupted": None,
            "lost_workers": [],
            "incomplete_reasons": [
                "the load step has not finished: still running, or its main process was lost "
                f"(recover the records with `{merge}`)"
            ],
        }
        try:
            self.write(0.0, 0.0, unfinished, resent_requests=None)
        except OSError as exc:
            log.error(
                "cannot write %s mid-run (%s)",
                self.settings.out_dir / RUN_FILE,
                exc.strerror or exc,
            )

    def write(
        self,
        client_cpu_s: float,
        setup_cpu_s: float,
        completeness: dict[str, Any],
        resent_requests: int | None,
    ) -> None:
        """run.json, atomically; `completeness` says what the records hold, `resent_requests`
        how many were resent after a stale keep-alive close (None: not known yet). Raises
        OSError."""
        config = self.settings.config
        doc = {
            "run_id": self.settings.run_id,
            "scenario": self.settings.scenario,
            "model": self.model,
            "base_url": config.server.base_url,
            "api_type": config.api.type.value,
            "load_type": str(config.load.type),
            "streaming": config.api.streaming,
            "started_at": iso_utc(self.wall_start),
            "wall_start_ns": self.wall_start,
            "num_workers": config.load.num_workers,
            "load_pods": self.settings.pods.count,
            "pod_index": self.settings.pods.index,
            "clock_offset_ns": self.clock.offset_ns,
            "clock_rtt_ns": self.clock.rtt_ns,
            "tool_version": _tool_version(),
            "stages": self.stages,
            "config": redact_tree(config.model_dump(mode="json")),  # api.headers may hold a key
            "client_cpu_s": round(client_cpu_s, 4),
            "setup_cpu_s": round(setup_cpu_s, 4),
            "resent_requests": resent_requests,
            "dataset": self.dataset,
            "server_metrics": self.server_metrics,
            "early_stop": self.early_stop,
            **completeness,
        }
        write_run_file(self.settings.out_dir, doc)
