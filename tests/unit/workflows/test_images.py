"""images/Dockerfile parsed: every template image maps to a target that fits its template, and
`make images` builds and pushes exactly the images the manifests reference (checked with
`make -n`: docker cannot run here)."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib

import pytest

from tests.helpers.dockerfile_targets import REPO, dockerfile_targets
from workflows.baseline import main
from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template


def test_every_template_image_has_a_fitting_target() -> None:
    targets = dockerfile_targets()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    options = TemplateOptions(image_registry="reg.example/bench", image_tag="1.2.3")
    manifest = build_template(BaselineParams(), options).to_dict()
    for template in manifest["spec"]["templates"]:
        if "container" not in template:
            continue
        container = template["container"]
        registry, _, rest = container["image"].rpartition("/")
        target_name, _, tag = rest.partition(":")
        assert (registry, tag) == ("reg.example/bench", "1.2.3")
        target = targets[target_name]
        assert target["from"] == "base"
        assert target["entrypoint"] == container["command"]
        assert target["extras"] == [template["name"]], "only the step's own extra"
        assert template["name"] in extras
        assert target["user"] not in (None, "0", "root")
        assert target["workdir"] == container["workingDir"]
    assert {t["name"] for t in manifest["spec"]["templates"] if "container" in t} == set(STEPS)


def test_base_image_is_slim_python() -> None:
    text = (REPO / "images" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim AS base$", text, re.M)


def _make_images(*variables: str) -> subprocess.CompletedProcess[str]:
    """`make -n images`: the commands it would run, without running them."""
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "images", *variables],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _build_commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line.startswith("docker ")]


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_make_images_builds_and_pushes_every_image_the_manifests_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _make_images("REGISTRY=reg.example/bench", "TAG=1.2.3")
    assert result.returncode == 0, result.stderr
    commands = _build_commands(result.stdout)
    options = TemplateOptions(image_registry="reg.example/bench", image_tag="1.2.3")
    targets = dockerfile_targets()
    built = set()
    for argv in commands:
        assert argv[:3] == ["docker", "buildx", "build"]
        target = _flag(argv, "--target")
        assert target in targets
        assert _flag(argv, "-f") == "images/Dockerfile"
        assert _flag(argv, "-t") == options.image(target)
        assert _flag(argv, "--platform") == "linux/amd64,linux/arm64"
        assert "--push" in argv and argv[-1] == "."
        built.add(_flag(argv, "-t"))
    images = {name for name, target in targets.items() if "entrypoint" in target}
    assert {_flag(argv, "--target") for argv in commands} == images  # not the shared "base"
    assert len(built) == len(commands)
    # Every image any rendered manifest runs (the DAG's steps, the real-data scenario's dataset
    # step, the simulator target and its tokenizer init container) is one that `make images`
    # pushes, and every image pushed is run by one.
    flags = ["--image-registry", "reg.example/bench", "--image-tag", "1.2.3"]
    referenced = set()
    for kind in (["--kind", "template"], ["--kind", "template", "--scenario", "sharegpt"]):
        assert main(["render", *kind, *flags], {}) == 0
        referenced |= set(re.findall(r"image: (\S+)", capsys.readouterr().out))
    assert main(["render", "--kind", "simulator", *flags], {}) == 0
    referenced |= set(re.findall(r"image: (\S+)", capsys.readouterr().out))
    assert referenced == built


def test_make_images_default_tag_is_the_default_image_tag() -> None:
    result = _make_images("REGISTRY=reg.example/bench")
    tags = {_flag(argv, "-t").rpartition(":")[2] for argv in _build_commands(result.stdout)}
    assert tags == {TemplateOptions().image_tag}


def test_make_images_without_registry_says_what_to_set() -> None:
    result = _make_images("REGISTRY=")
    assert result.returncode == 2
    assert "make images: set REGISTRY=<registry>/<prefix>" in result.stderr
    assert "--image-registry" in result.stderr
    assert _build_commands(result.stdout) == []
