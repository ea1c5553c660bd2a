"""What `submit` counts as a difference between the installed template and its own."""

from __future__ import annotations

import copy
from typing import Any

from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template
from workflows.template_diff import parameter_name_differences, summarize, template_differences


def _template() -> dict[str, Any]:
    options = TemplateOptions(image_registry="reg.example/bench")
    manifest: dict[str, Any] = build_template(BaselineParams(), options).to_dict()
    return manifest


def _load(manifest: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in manifest["spec"]["templates"] if t["name"] == "load")
    return found


def test_what_the_server_adds_or_reshapes_is_no_difference() -> None:
    wanted = _template()
    installed = copy.deepcopy(wanted)
    installed["metadata"].update(uid="u-1", resourceVersion="7", generation=2)
    installed["metadata"]["labels"]["workflows.argoproj.io/creator"] = "system-serviceaccount"
    # IntOrString comes back as the server stores it; Go's omitempty drops empty fields.
    installed["spec"]["activeDeadlineSeconds"] = str(installed["spec"]["activeDeadlineSeconds"])
    wanted["spec"]["volumes"] = []
    # Parameter values are the run's own: submit sets every one.
    installed["spec"]["arguments"]["parameters"][0]["value"] = "http://other:8000"
    assert template_differences(installed, wanted) == []


def test_differences_are_named_down_to_the_field() -> None:
    wanted = _template()
    installed = copy.deepcopy(wanted)
    _load(installed)["container"]["image"] = "reg.example/bench/load:0.0.9"
    installed["spec"]["serviceAccountName"] = "other-sa"
    installed["metadata"]["labels"]["app.kubernetes.io/name"] = "renamed"
    installed["spec"]["arguments"]["parameters"][0]["description"] = "old text"
    assert template_differences(installed, wanted) == [
        "metadata.labels",
        "parameters[base_url].description",
        "serviceAccountName",
        "templates[load].container.image",
    ]


def test_parameters_declared_on_one_side_only() -> None:
    wanted = _template()
    installed = copy.deepcopy(wanted)
    parameters = installed["spec"]["arguments"]["parameters"]
    parameters[:] = [p for p in parameters if p["name"] != "seed"]
    parameters.append({"name": "retired", "value": "x"})
    _load(installed)["container"]["image"] = "elsewhere/load:1"
    assert parameter_name_differences(installed, wanted) == [
        "parameters[+seed]",
        "parameters[-retired]",
    ]


def test_summary_is_cut_after_eight() -> None:
    assert summarize([f"d{i}" for i in range(10)]) == "d0, d1, d2, d3, d4, d5, d6, d7 and 2 more"
    assert summarize(["a", "b"]) == "a, b"
