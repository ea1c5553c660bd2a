"""When a stage of an open-loop run shows saturation: the one rule the load step's early stop
and the report's capacity reading both apply.

Why on the ground floor: the load step decides, between two stages, whether to skip the rest
(`load.early_stop`), and the report reads the same stages afterwards as a capacity curve; a
step never imports another (steps/CONTRACTS.md), and two copies of the rule would let the load
step stop at a stage the report calls healthy. The rule (the AI on EKS guide's reading of its
saturation scenario):

- errors: the stage's error rate is above `ERROR_RATE` (the 1 % a nightly run may not exceed);
- sent: fewer than `SENT_SHARE` of its requested sends went out (connections refused: the
  guide's `achieved_rate ≈ requested_rate` check);
- queue: its TTFT p99 is `TAIL_GROWTH` times the lowest-rate stage's or more (the queue in
  front of the server grows: the guide's "TTFT 2-3x baseline"; open-loop sends keep their
  rate, so the queue shows in TTFT, not in the sent rate);
- a limit: its TTFT p99 is above an absolute bound the user set (early stop's latency limit);
- nothing: no request of the stage succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ERROR_RATE", "SENT_SHARE", "TAIL_GROWTH", "StageReading", "saturation_signs"]

#: Error rate above which a stage is saturated; also the report's default SLA error-rate limit.
ERROR_RATE = 0.01
#: A stage that sent less than this share of its requested rate did not offer the load it names.
SENT_SHARE = 0.95
#: TTFT p99 this many times the lowest stage's: requests queue (the guide: TTFT 2-3x baseline).
TAIL_GROWTH = 2.0


@dataclass(frozen=True)
class StageReading:
    """What the rule reads of one stage (None: not known, e.g. no request sent)."""

    rate: float  # requested requests/s
    achieved_rate: float | None  # sent requests/s over the send window
    error_rate: float | None
    ttft_p99_ms: float | None  # over the stage's successful requests


def saturation_signs(
    stage: StageReading,
    reference_ttft_p99_ms: float | None,
    ttft_p99_limit_ms: float | None = None,
) -> list[str]:
    """The saturation signs in one stage, one phrase each; empty = the stage held.

    `reference_ttft_p99_ms` is the lowest-rate stage's TTFT p99 (None: no reference yet);
    `ttft_p99_limit_ms` an absolute bound (None: none)."""
    signs = []
    if stage.error_rate is not None and stage.error_rate > ERROR_RATE:
        signs.append(f"errors {stage.error_rate:.1%} > {ERROR_RATE:.0%}")
    if stage.achieved_rate is not None and stage.achieved_rate < SENT_SHARE * stage.rate:
        signs.append(f"sent {stage.achieved_rate:.2f}/s of {stage.rate:g}/s")
    ttft_p99 = stage.ttft_p99_ms
    if ttft_p99 is None:
        signs.append("no successful request")
        return signs
    if reference_ttft_p99_ms and ttft_p99 >= TAIL_GROWTH * reference_ttft_p99_ms:
        growth = ttft_p99 / reference_ttft_p99_ms
        signs.append(f"TTFT p99 {ttft_p99:.0f} ms, {growth:.1f}x the lowest stage's")
    if ttft_p99_limit_ms is not None and ttft_p99 > ttft_p99_limit_ms:
        signs.append(f"TTFT p99 {ttft_p99:.0f} ms > limit {ttft_p99_limit_ms:g} ms")
    return signs
