"""Early stop (`load.early_stop`): between two stages, whether the run should skip the rest.

The main process reads a finished stage from its workers' tallies (requests, sent, failed,
TTFTs: `worker.StageTally`, sent with each `stage_done`), not from the part files, which hold
only what was flushed. It applies the saturation rule the report's capacity reading applies
(steps/stage_saturation.py) with the lowest-rate stage run so far as the TTFT reference, so
the load step stops at the stage the report will call saturated. What it decided goes into
run.json (`early_stop`), and the skipped stages' requests are not scheduled ones: the run is
complete, stopped early.

One pod only: with several, each pod sees its share of a stage and they could disagree on
stopping; and rate stages only: a closed-loop stage has no requested rate to fall short of.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from steps.errors import UsageError
from steps.load.config import EarlyStop
from steps.load.schedule import StagePlan
from steps.load.worker import StageTally
from steps.record_metrics import per_second, percentiles, share
from steps.stage_saturation import StageReading, saturation_signs

__all__ = ["EarlyStopper", "check_early_stop"]

log = logging.getLogger(__name__)


def check_early_stop(early_stop: EarlyStop | None, plans: Sequence[StagePlan], pods: int) -> None:
    """Refuse an early stop the load step cannot decide alone (one line)."""
    if early_stop is None:
        return
    if pods > 1:
        raise UsageError(
            "load.early_stop: needs one load pod (each pod sees only its share of a stage)"
        )
    if any(plan.rate is None for plan in plans):
        raise UsageError("load.early_stop: needs rate stages (a closed-loop stage has no rate)")


def _reading(plan: StagePlan, tallies: Iterable[StageTally]) -> StageReading:
    """A finished stage as the saturation rule reads it, from every worker's tally."""
    requests = sent = errors = 0
    ttfts: list[float] = []
    for tally in tallies:
        requests, sent, errors = requests + tally.requests, sent + tally.sent, errors + tally.errors
        ttfts += tally.ttfts_ms
    p99 = float(percentiles(np.asarray(ttfts), [99])[0]) if ttfts else None
    assert plan.rate is not None  # check_early_stop
    return StageReading(plan.rate, per_second(sent, plan.duration_s), share(errors, requests), p99)


@dataclass
class EarlyStopper:
    """The early stop of one run: `stopped` is set once a stage saturated."""

    config: EarlyStop
    _reference: tuple[float, float | None] | None = None  # lowest rate so far, its TTFT p99
    stopped: dict[str, Any] | None = None

    def saturated(self, plan: StagePlan, tallies: Iterable[StageTally]) -> bool:
        """Whether `plan`'s finished stage saturated (then `stopped` says how)."""
        reading = _reading(plan, tallies)
        if self._reference is None or reading.rate < self._reference[0]:
            self._reference = (reading.rate, reading.ttft_p99_ms)
        signs = saturation_signs(reading, self._reference[1], self.config.ttft_p99_ms)
        if signs:
            self.stopped = {"stage": plan.stage, "rate": plan.rate, "reasons": signs}
        return bool(signs)

    def skip(self, skipped: Sequence[StagePlan]) -> int:
        """Record the stages not run; returns their requests (no longer scheduled)."""
        assert self.stopped is not None
        self.stopped["skipped_stages"] = [
            {"stage": p.stage, "rate": p.rate, "duration_s": p.duration_s} for p in skipped
        ]
        log.warning(
            "early stop: stage %d (%g/s) saturated (%s); skipping %d stage(s)",
            self.stopped["stage"],
            self.stopped["rate"],
            "; ".join(self.stopped["reasons"]),
            len(skipped),
        )
        return sum(len(p.offsets_ns) for p in skipped)

    def run_json(self) -> dict[str, Any]:
        """run.json `early_stop`: the limit and, when it stopped, which stage and why."""
        return {"ttft_p99_ms": self.config.ttft_p99_ms, "stopped": self.stopped}
