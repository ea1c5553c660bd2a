"""Small hand-written Argo manifests for the local runner's tests: real subprocesses, no images.

`pipeline_manifest` is the two-task DAG most runner tests start from: `produce` writes an output
parameter and an artifact and exits with a chosen code, `consume` reads the artifact.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONSUME", "PRODUCE", "container_template", "dag_manifest", "pipeline_manifest"]


def container_template(name: str, code: str, **extra: Any) -> dict[str, Any]:
    """A container template running `python -c code` in /work (image unused locally)."""
    return {
        "name": name,
        "container": {"image": "x", "command": ["python", "-c", code], "workingDir": "/work"},
        **extra,
    }


def dag_manifest(templates: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """A WorkflowTemplate with parameter `n`, a mutex and the DAG `main` of `tasks`."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "n", "value": "3"}]},
            "synchronization": {"mutexes": [{"name": "m-{{workflow.parameters.n}}"}]},
            "templates": [*templates, {"name": "main", "dag": {"tasks": tasks}}],
        },
    }


PRODUCE = (
    "import sys, pathlib; n = int(sys.argv[1]); "
    "pathlib.Path('out').mkdir(exist_ok=True); pathlib.Path('out/n').write_text(str(n * 2)); "
    "pathlib.Path('data.txt').write_text('x' * n); sys.exit(int(sys.argv[2]))"
)
CONSUME = "import sys, pathlib; print('got', len(pathlib.Path(sys.argv[1]).read_text()))"


def pipeline_manifest(exit_code: str, depends: str) -> dict[str, Any]:
    """produce (writes out/n and an artifact, exits `exit_code`) -> consume (reads it),
    consume gated by `depends`."""
    produce = container_template(
        "produce",
        PRODUCE,
        inputs={"parameters": [{"name": "n"}]},
        outputs={
            "parameters": [{"name": "double", "valueFrom": {"path": "/work/out/n"}}],
            "artifacts": [{"name": "data", "path": "/work/data.txt", "archive": {"none": {}}}],
        },
    )
    produce["container"]["args"] = ["{{inputs.parameters.n}}", exit_code]
    consume = container_template(
        "consume", CONSUME, inputs={"artifacts": [{"name": "d", "path": "/work/in/d.txt"}]}
    )
    consume["container"]["args"] = ["{{inputs.artifacts.d.path}}"]
    tasks = [
        {
            "name": "produce",
            "template": "produce",
            "arguments": {"parameters": [{"name": "n", "value": "{{workflow.parameters.n}}"}]},
        },
        {
            "name": "consume",
            "template": "consume",
            "depends": depends,
            "arguments": {
                "artifacts": [{"name": "d", "from": "{{tasks.produce.outputs.artifacts.data}}"}]
            },
        },
    ]
    return dag_manifest([produce, consume], tasks)
