"""The Argo expression subset: substitution, expressions, depends."""

from __future__ import annotations

import pytest

from workflows.argo_expr import ExprError, depends_tasks, evaluate, evaluate_depends, substitute

SCOPE = {
    "inputs.parameters.bucket": "b",
    "inputs.parameters.path": "p",
    "x.n": "300",
    "s.x": "5x180,10x180,2.5x30",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{inputs.parameters.bucket}}/{{ inputs.parameters.path }}", "b/p"),
        ("{{=asInt(x.n) + 900}}", "1200"),
        ("{{=3 * (asInt(x.n) + 600) + 45}}s", "2745s"),
        # The staged load's deadline: expr-lang builtins over a stage spec.
        ("{{=sum(map(split(s.x, ','), {asInt(split(#, 'x')[1])}))}}", "390"),
        ("{{=len(split(s.x, ',')) * asInt(x.n)}}", "900"),
        ("{{=split(split(s.x, ',')[2], 'x')[0]}}", "2.5"),
        ("{{=!(asInt(x.n) > 10) || false}}", "false"),
        ("plain", "plain"),
    ],
)
def test_substitute_known_forms(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{workflow.name}}", "unknown variable"),
        ("{{=sprig.upper('a')}}", "function 'sprig.upper' is not supported"),
        ("{{=asInt('a')}}", "not an integer"),
        ("{{=x.n % 2}}", "unsupported syntax"),
        ("{{=x.n * 2}}", "cannot multiply"),
        ("{{=x.n + 1}}", "cannot apply"),
        # No conditional or string expressions: step arguments carry parameters unchanged.
        ("{{=inputs.parameters.bucket == '' ? '' : 's3://'}}", r"unsupported syntax at \" \? "),
        ("{{='s3://' + inputs.parameters.bucket}}", "cannot apply"),
        ("{{=asFloat(x.n)}}", "function 'asFloat' is not supported"),
        ("{{=asInt(x.n) - 1}}", "unsupported syntax at ' - 1'"),
        ("{{=split(s.x, ',')[3]}}", "index 3 out of range"),
        ("{{=sum(split(s.x, ','))}}", "is not a list of numbers"),
        ("{{=map(x.n, {#})}}", "map: '300' is not a list"),
        ("{{=asInt(#)}}", "'#' outside a closure"),
        ("{{=split(s.x)}}", "split: wrong number of arguments"),
        ("{{=filter(split(s.x, ','), {true})}}", "function 'filter' is not supported"),
    ],
)
def test_substitute_outside_subset_raises(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        substitute(text, SCOPE)


def test_evaluate_depends_bare_name_means_succeeded_skipped_daemoned() -> None:
    assert evaluate_depends("a && b.Failed", {"a": "Succeeded", "b": "Failed"}) is True
    assert evaluate_depends("a", {"a": "Failed"}) is False
    assert evaluate_depends(
        "(a.Failed || a.Succeeded) && !b.Failed", {"a": "Failed", "b": "Skipped"}
    )


def test_depends_tasks_rejects_unknown_result() -> None:
    assert depends_tasks("load.Succeeded || load.Failed") == {"load"}
    with pytest.raises(ExprError, match=r"'\.Done'"):
        depends_tasks("load.Done")


def test_evaluate_comparison_types() -> None:
    assert evaluate("asInt(lastRetry.exitCode) != 2", {"lastRetry.exitCode": "1"}) is True
    with pytest.raises(ExprError, match="cannot compare"):
        evaluate("'a' < 1", {})
