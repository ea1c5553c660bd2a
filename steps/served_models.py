"""What a server's `GET /v1/models` answer says: the served ids and, from vLLM, each one's
`max_model_len`.

Ground floor because two steps read the same answer: readiness waits until the model is listed,
and the load step picks the model to ask for and checks that requests fit its context window.
One parser means both agree on what counts as "served" (an entry with a string `id`) and on when
a context length is known (an integer, never a bool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ServedModel", "served_model"]


@dataclass(frozen=True)
class ServedModel:
    """One entry of `/v1/models`; `max_model_len` is a vLLM extension (None elsewhere)."""

    id: str
    max_model_len: int | None


def served_model(payload: Any, model_name: str) -> tuple[ServedModel | None, tuple[str, ...]]:
    """Find `model_name` in a `/v1/models` JSON body; also return every served id.

    Raises ValueError when the body has no `data` list (not an OpenAI-compatible answer).
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("/v1/models body has no 'data' list")
    served: list[ServedModel] = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        raw_len = entry.get("max_model_len")
        max_len = raw_len if isinstance(raw_len, int) and not isinstance(raw_len, bool) else None
        served.append(ServedModel(id=entry["id"], max_model_len=max_len))
    ids = tuple(m.id for m in served)
    match = next((m for m in served if m.id == model_name), None)
    return match, ids
