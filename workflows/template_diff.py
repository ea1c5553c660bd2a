"""Where an installed WorkflowTemplate differs from the one this code would install. Pure.

Why: `submit` must not silently replace the template that cron and UI runs share, so it compares
first and names what differs (`templates[load].affinity`, `parameters[target_labels].enum`, ...).
What is compared is what a run takes from the template: parameter *values* are left out, since
a submitted Workflow sets every parameter itself, and so is what the server adds or drops on its
own (metadata beyond our labels and annotations; empty fields, which Go's `omitempty` drops;
numbers that Kubernetes may hand back as strings in IntOrString fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["parameter_name_differences", "summarize", "template_differences"]

#: A one-line summary names at most this many differences.
_SUMMARY_ITEMS = 8


def _normal(node: Any) -> Any:
    """Drop None and empty values recursively; numbers as text (IntOrString round trips)."""
    if isinstance(node, Mapping):
        pruned = {str(k): _normal(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return str(node)
    return node


def _by_name(items: Any) -> dict[str, Any]:
    return {str(item.get("name")): item for item in items or [] if isinstance(item, Mapping)}


def _named_differences(
    label: str, installed: Any, wanted: Any, ignore: tuple[str, ...] = ()
) -> list[str]:
    """`label[+x]` only wanted, `label[-x]` only installed, `label[x].field` changed."""
    old, new = _by_name(installed), _by_name(wanted)
    out = [f"{label}[+{name}]" for name in new if name not in old]
    out += [f"{label}[-{name}]" for name in old if name not in new]
    for name in (n for n in new if n in old):
        out += _field_differences(
            f"{label}[{name}]", old[name], new[name], ignore=("name", *ignore)
        )
    return out


def _field_differences(
    label: str, old: Any, new: Any, ignore: tuple[str, ...] = (), depth: int = 2
) -> list[str]:
    """`label.field` for each differing field, `depth` levels of mappings down."""
    if old == new:
        return []
    if depth == 0 or not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return [label]
    out: list[str] = []
    for field in sorted((old.keys() | new.keys()) - set(ignore)):
        out += _field_differences(f"{label}.{field}", old.get(field), new.get(field), (), depth - 1)
    return out


def template_differences(installed: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What differs between two WorkflowTemplate dicts (camelCase, as the API serves them)."""
    old, new = _normal(installed), _normal(wanted)
    out: list[str] = []
    for key in ("labels", "annotations"):
        ours = new.get("metadata", {}).get(key, {})
        theirs = old.get("metadata", {}).get(key, {})
        if any(theirs.get(k) != v for k, v in ours.items()):
            out.append(f"metadata.{key}")
    old_spec, new_spec = old.get("spec", {}), new.get("spec", {})
    for key in sorted(old_spec.keys() | new_spec.keys()):
        if key == "templates":
            out += _named_differences("templates", old_spec.get(key), new_spec.get(key))
        elif key == "arguments":
            old_args, new_args = old_spec.get(key, {}), new_spec.get(key, {})
            out += _named_differences(
                "parameters",
                old_args.get("parameters"),
                new_args.get("parameters"),
                ignore=("value",),
            )
            out += [
                f"arguments.{k}"
                for k in sorted((old_args.keys() | new_args.keys()) - {"parameters"})
                if old_args.get(k) != new_args.get(k)
            ]
        elif old_spec.get(key) != new_spec.get(key):
            out.append(key)
    return out


def parameter_name_differences(
    installed: Mapping[str, Any], wanted: Mapping[str, Any]
) -> list[str]:
    """Only the parameters one template declares and the other does not (another version)."""
    return [
        d
        for d in template_differences(installed, wanted)
        if d.startswith(("parameters[+", "parameters[-"))
    ]


def summarize(differences: list[str]) -> str:
    """A one-line list, cut after a few items."""
    shown = ", ".join(differences[:_SUMMARY_ITEMS])
    rest = len(differences) - _SUMMARY_ITEMS
    return shown + (f" and {rest} more" if rest > 0 else "")
