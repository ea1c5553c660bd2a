"""The stage list as one line of text: `RATExSECONDS[,RATExSECONDS...]`, e.g. `5x180,10x180`.

Why a text form: a multi-stage run's stages must travel as ONE Argo parameter (a workflow knob
the UI shows and a rerun repeats, and the output parameter a sweep's probe hands to the load
task), and Argo parameters are strings. The load step reads it (`--stages`), the workflow
validates its knob with the same function and sums its seconds in the load pod's time budget,
so the three never disagree on what a spec means.

Rules: RATE is requests per second, a plain decimal (`5`, `2.5`; no exponent, no sign);
SECONDS is a whole number of seconds (the load pod's deadline is an integer sum of them).
Each stage within the run's bounds (`steps.shared`: 1 s to MAX_SECONDS, at most MAX_STAGES).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from steps.shared import MAX_SECONDS, MAX_STAGES

__all__ = ["STAGES_FORMAT", "format_stages", "parse_stages"]

#: The format, as error messages and help texts name it.
STAGES_FORMAT = "RATExSECONDS[,RATExSECONDS...] (e.g. 5x180,10x180)"
_STAGE_RE = re.compile(r"(?P<rate>\d+(?:\.\d+)?)x(?P<seconds>\d+)")
#: Longer specs are refused before splitting: MAX_STAGES stages of a few characters each.
_MAX_SPEC_CHARS = MAX_STAGES * 24


def parse_stages(spec: str) -> tuple[tuple[float, int], ...]:
    """(rate, seconds) per stage, in order; ValueError (one line naming the bad stage) else."""
    text = spec.strip()
    if not text:
        raise ValueError(f"empty; expected {STAGES_FORMAT}")
    if len(text) > _MAX_SPEC_CHARS:
        raise ValueError(f"{len(text)} characters is more than {MAX_STAGES} stages can need")
    parts = text.split(",")
    if len(parts) > MAX_STAGES:
        raise ValueError(f"{len(parts)} stages, more than the {MAX_STAGES} one run may hold")
    stages = []
    for number, part in enumerate(parts, 1):
        match = _STAGE_RE.fullmatch(part.strip())
        if match is None:
            raise ValueError(
                f"stage {number} {part.strip()!r} is not RATExSECONDS ({STAGES_FORMAT})"
            )
        rate, seconds = float(match["rate"]), int(match["seconds"])
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"stage {number} {part.strip()!r}: the rate must be above 0")
        if not 1 <= seconds <= MAX_SECONDS:
            raise ValueError(
                f"stage {number} {part.strip()!r}: seconds must be 1-{MAX_SECONDS:.0f}"
            )
        stages.append((rate, seconds))
    return tuple(stages)


def format_stages(stages: tuple[tuple[float, int], ...] | list[tuple[float, int]]) -> str:
    """The spec of (rate, seconds) stages; `parse_stages(format_stages(s)) == s`."""
    return ",".join(f"{_decimal(rate)}x{seconds}" for rate, seconds in stages)


def _decimal(rate: float) -> str:
    """The rate as a plain decimal, no exponent (`1e-06` would not parse): the shortest text
    that reads back as the same float."""
    text = format(Decimal(repr(rate)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
