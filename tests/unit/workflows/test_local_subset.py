"""The local runner's supported subset: refusals by name, the project's template accepted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers.argo.manifests import pipeline_manifest
from tests.helpers.dockerfile_targets import REPO
from workflows.local_subset import UnsupportedFeature, check_supported, emulated_summary
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template


@pytest.mark.parametrize(
    ("mutate", "name"),
    [
        (lambda m: m["spec"].update(onExit="cleanup"), "'onExit'"),
        (lambda m: m["spec"]["templates"][0].update(script={"source": "x"}), "'script'"),
        (lambda m: m["spec"]["templates"][0].update(sidecars=[]), "'sidecars'"),
        (
            lambda m: m["spec"]["templates"][-1]["dag"]["tasks"][0].update(withItems=[1]),
            "'withItems'",
        ),
        (
            lambda m: m["spec"]["templates"][-1]["dag"]["tasks"][0].update(continueOn={}),
            "'continueOn'",
        ),
        (
            lambda m: m["spec"]["templates"][0]["outputs"]["artifacts"][0].update(
                archive={"tar": {}}
            ),
            "'tar'",
        ),
        (
            lambda m: m["spec"]["templates"][0]["container"].update(command=["sh", "-c", "x"]),
            "must start with 'python'",
        ),
        (
            lambda m: m["spec"]["templates"][0].update(
                retryStrategy={"retryPolicy": "OnTransientError"}
            ),
            "'OnTransientError'",
        ),
        (
            # Here every failure is a step's exit: OnError would retry none of them.
            lambda m: m["spec"]["templates"][0].update(retryStrategy={"retryPolicy": "OnError"}),
            "retryStrategy.retryPolicy 'OnError' is not supported",
        ),
    ],
)
def test_check_supported_refuses_feature_by_name(mutate: Any, name: str) -> None:
    manifest = copy.deepcopy(pipeline_manifest("0", "produce"))
    mutate(manifest)
    with pytest.raises(UnsupportedFeature, match=name):
        check_supported(manifest)


def test_check_supported_accepts_project_template() -> None:
    check_supported(build_template(BaselineParams(), TemplateOptions()).to_dict())


def test_readme_quotes_the_emulated_fields() -> None:
    """The README's list of what `run` emulates is the subset itself, not a copy that drifts."""
    readme = " ".join((REPO / "README.md").read_text().split())
    assert emulated_summary() in readme
