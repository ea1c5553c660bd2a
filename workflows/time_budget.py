"""Each step's time limits as Argo v4.0.5 enforces them, derived from one number: its deadline.

What Argo measures (workflow/controller/operator.go):
- `activeDeadlineSeconds` (template) bounds one attempt's pod, counted from when it starts; the
  kubelet kills it past that.
- `timeout` (template) counts from the node's start and fails the node when it is still Pending
  past it: the only limit on a pod that cannot be scheduled, cannot pull its image or waits on
  its input artifacts. For a retried template the node is the retry node, which started with the
  FIRST attempt, so its timeout must cover every attempt.
- `retryStrategy.backoff.maxDuration` also counts from the first attempt's start: once it has
  passed, or the next backoff would end after it, no further retry happens, and retry pods get
  the rest of it as their deadline.
So one attempt may take `deadline + PENDING_ALLOWANCE_S`, and a retried step
`(limit + 1) * attempt + the backoffs`: both `maxDuration` and `timeout` are that, or the retries
the strategy promises would never happen (a 600 s readiness wait under a 5 min maxDuration
never got its retry). Limits that depend on a parameter are `{{=expr}}` tags, which Argo
evaluates when it resolves the template's inputs; constant ones are plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hera.workflows import RetryStrategy
from hera.workflows import models as m

from workflows.argo_expr import ExprError, evaluate

__all__ = ["BACKOFF_FACTOR", "BACKOFF_S", "PENDING_ALLOWANCE_S", "RETRY_LIMIT", "TimeBudget"]

#: Time a pod may spend Pending per attempt: scheduling (a node scale-up takes minutes), image
#: pull, and the init container that downloads input artifacts.
PENDING_ALLOWANCE_S = 600
RETRY_LIMIT = 2
BACKOFF_S = 15
BACKOFF_FACTOR = 2


def _seconds(expression: str, unit: str = "") -> str:
    """A constant expression as its number, otherwise a `{{=expr}}` tag; `unit` appended."""
    try:
        value = evaluate(expression, {})
    except ExprError:
        return "{{=" + expression + "}}" + unit
    return f"{value}{unit}"


@dataclass(frozen=True)
class TimeBudget:
    """`deadline`: one attempt's run time in seconds, an expr-lang sum over the template's
    inputs (e.g. `asInt(inputs.parameters.duration) + 900`); `retries`: how many retries the
    step gets (0 = none)."""

    deadline: str
    retries: int = 0

    def active_deadline_seconds(self) -> int | str:
        text = _seconds(self.deadline)
        return int(text) if text.isdigit() else text

    def _attempt(self) -> str:
        return f"{self.deadline} + {PENDING_ALLOWANCE_S}"  # `deadline` is a sum: no parentheses

    def _backoffs_s(self) -> int:
        """Argo waits BACKOFF_S * FACTOR^(n-1) before retry n."""
        return sum(BACKOFF_S * BACKOFF_FACTOR**n for n in range(self.retries))

    def _total(self) -> str:
        if not self.retries:
            return self._attempt()
        return f"{self.retries + 1} * ({self._attempt()}) + {self._backoffs_s()}"

    def timeout(self) -> str:
        """The template `timeout` (a Go duration: Argo refuses a bare number)."""
        return _seconds(self._total(), "s")

    def retry_strategy(self, expression: str) -> RetryStrategy | None:
        """Retries when `expression` (over lastRetry.*) holds, within the budget."""
        if not self.retries:
            return None
        return RetryStrategy(
            limit=str(self.retries),
            retry_policy="Always",
            expression=expression,
            backoff=m.Backoff(
                duration=f"{BACKOFF_S}s",
                factor=m.IntOrString(str(BACKOFF_FACTOR)),
                max_duration=_seconds(self._total(), "s"),
            ),
        )
