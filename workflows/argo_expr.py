"""The subset of Argo's template language the project's manifests use, evaluated locally.

Argo substitutes `{{name}}` tags by simple lookup and evaluates `{{=expr}}` tags, retry
`expression`s and DAG `depends` with expr-lang (github.com/expr-lang/expr). The local runner and
the graph lint need the same results without Go, so this module implements the small, closed
subset the project's manifests use: literals (numbers, 'strings', true/false), dotted variable
names, `asInt()`, `*` and `+` over numbers (the time budgets), comparisons (retry expressions,
metric and task `when`s), `! && ||` and parentheses (`depends`), and for the time budget of a
stage spec (`5x180,10x180`, steps/stage_spec.py) the expr-lang builtins `split(s, sep)`,
`len(list)`, `sum(list)`, `map(list, {closure over #})` and indexing `list[n]`. Argo v4.0.5
evaluates `{{=...}}` with expr-lang v1.17.7 (go.mod), whose builtins these are, with `asInt`
an alias of `int` (util/expr/env/env.go). Anything else is refused with an `ExprError` naming
the construct, never guessed: step arguments carry parameters unchanged, so no conditional or
string expression is needed.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ExprError",
    "depends_results",
    "depends_tasks",
    "evaluate",
    "evaluate_depends",
    "substitute",
    "tags",
]

Value = int | float | str | bool | list[Any]


class ExprError(ValueError):
    """An expression outside the supported subset, or one that cannot be evaluated."""


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[+*<>!()\[\],{}#]))"
)
_TAG_RE = re.compile(r"\{\{(.*?)\}\}")
_FUNCTIONS: dict[str, Callable[..., Value]] = {}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _as_int(value: Value) -> Value:
    try:
        return int(str(value))
    except ValueError:
        raise ExprError(f"asInt: {value!r} is not an integer") from None


def _split(text: Value, separator: Value) -> Value:
    if not (isinstance(text, str) and isinstance(separator, str)):
        raise ExprError(f"split: needs two strings, got {text!r}, {separator!r}")
    return text.split(separator)


def _len(value: Value) -> Value:
    if not isinstance(value, list | str):
        raise ExprError(f"len: {value!r} is not a list or string")
    return len(value)


def _sum(values: Value) -> Value:
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        raise ExprError(f"sum: {values!r} is not a list of numbers")
    total: Value = sum(values)
    return total


_FUNCTIONS.update({"asInt": _as_int, "split": _split, "len": _len, "sum": _sum})


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise ExprError(f"unsupported syntax at {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the token list, evaluating as it goes (no side effects)."""

    def __init__(
        self, text: str, variables: Mapping[str, Value], tokens: list[_Token] | None = None
    ) -> None:
        self.text = text
        self.tokens = _tokenize(text) if tokens is None else tokens
        self.pos = 0
        self.variables = variables

    def _peek(self) -> str | None:
        return self.tokens[self.pos].text if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> _Token:
        if self.pos >= len(self.tokens):
            raise ExprError(f"unexpected end of expression {self.text!r}")
        token = self.tokens[self.pos]
        if expected is not None and token.text != expected:
            raise ExprError(f"expected {expected!r}, got {token.text!r} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> Value:
        value = self._or()
        if self.pos != len(self.tokens):
            raise ExprError(f"unexpected {self.tokens[self.pos].text!r} in {self.text!r}")
        return value

    def _left_assoc(
        self, op: str, operand: Callable[[], Value], combine: Callable[[Value, Value], Value]
    ) -> Value:
        """`operand (op operand)*`, combined left to right."""
        value = operand()
        while self._peek() == op:
            self._take()
            value = combine(value, operand())
        return value

    def _or(self) -> Value:
        return self._left_assoc("||", self._and, lambda a, b: _truth(a) or _truth(b))

    def _and(self) -> Value:
        return self._left_assoc("&&", self._not, lambda a, b: _truth(a) and _truth(b))

    def _not(self) -> Value:
        if self._peek() == "!":
            self._take()
            return not _truth(self._not())
        return self._compare()

    def _compare(self) -> Value:
        left = self._sum()
        op = self._peek()
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            return left
        self._take()
        right = self._sum()
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        if isinstance(left, str) != isinstance(right, str):
            raise ExprError(f"cannot compare {left!r} {op} {right!r} in {self.text!r}")
        ordered = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}  # type: ignore[operator]
        return ordered[op]

    def _sum(self) -> Value:
        refusal = "cannot apply + to {} and {}"
        return self._left_assoc("+", self._product, self._numbers(operator.add, refusal))

    def _product(self) -> Value:
        refusal = "cannot multiply {} by {}"
        return self._left_assoc("*", self._atom, self._numbers(operator.mul, refusal))

    def _numbers(
        self, apply: Callable[[Any, Any], Any], refusal: str
    ) -> Callable[[Value, Value], Value]:
        """`apply` over two numbers; anything else refused with `refusal` (two `{}` slots)."""

        def combine(left: Value, right: Value) -> Value:
            if not (_is_number(left) and _is_number(right)):
                raise ExprError(f"{refusal.format(repr(left), repr(right))} in {self.text!r}")
            result: Value = apply(left, right)
            return result

        return combine

    def _atom(self) -> Value:
        value = self._primary()
        while self._peek() == "[":  # list[n]
            self._take()
            index = self._or()
            self._take("]")
            if not isinstance(value, list) or not isinstance(index, int) or isinstance(index, bool):
                raise ExprError(f"cannot index {value!r} by {index!r} in {self.text!r}")
            if not 0 <= index < len(value):
                raise ExprError(f"index {index} out of range of {value!r} in {self.text!r}")
            value = value[index]
        return value

    def _closure(self) -> list[_Token]:
        """The tokens of a `{...}` closure (expr-lang's predicate), taken unevaluated."""
        self._take("{")
        start, depth = self.pos, 1
        while depth:
            text = self._take().text
            depth += {"{": 1, "}": -1}.get(text, 0)
        return self.tokens[start : self.pos - 1]

    def _map(self) -> Value:
        """`map(list, {expr over #})`: the closure evaluated once per element."""
        items = self._or()
        self._take(",")
        body = self._closure()
        self._take(")")
        if not isinstance(items, list):
            raise ExprError(f"map: {items!r} is not a list in {self.text!r}")
        return [_Parser(self.text, {**self.variables, "#": item}, body).parse() for item in items]

    def _call(self, name: str) -> Value:
        self._take("(")
        if name == "map":
            return self._map()
        function = _FUNCTIONS.get(name)
        if function is None:
            raise ExprError(
                f"function {name!r} is not supported (supported: {sorted([*_FUNCTIONS, 'map'])})"
            )
        arguments = [self._or()]
        while self._peek() == ",":
            self._take()
            arguments.append(self._or())
        self._take(")")
        try:
            return function(*arguments)
        except TypeError:
            raise ExprError(f"{name}: wrong number of arguments in {self.text!r}") from None

    def _primary(self) -> Value:
        token = self._take()
        if token.text == "#":
            if "#" not in self.variables:
                raise ExprError(f"'#' outside a closure in {self.text!r}")
            return self.variables["#"]
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "str":
            return token.text[1:-1]
        if token.text == "(":
            value = self._or()
            self._take(")")
            return value
        if token.kind != "name":
            raise ExprError(f"unexpected {token.text!r} in {self.text!r}")
        if token.text in ("true", "false"):
            return token.text == "true"
        if self._peek() == "(":
            return self._call(token.text)
        if token.text not in self.variables:
            raise ExprError(f"unknown variable {token.text!r} in {self.text!r}")
        return self.variables[token.text]


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truth(value: Value) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{value!r} is not a boolean")
    return value


def evaluate(expression: str, variables: Mapping[str, Value]) -> Value:
    """Evaluate one expr-lang expression of the supported subset."""
    return _Parser(expression, variables).parse()


def _render(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def tags(text: str) -> list[str]:
    """The bodies of every `{{...}}` tag in `text` (`=expr` for expression tags)."""
    return [body.strip() for body in _TAG_RE.findall(text)]


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace `{{name}}` by lookup and `{{=expr}}` by evaluation; unknown names are errors."""

    def replace(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        if body.startswith("="):
            return _render(evaluate(body[1:], variables))
        if body not in variables:
            raise ExprError(f"unknown variable '{{{{{body}}}}}'")
        return variables[body]

    return _TAG_RE.sub(replace, text)


#: Task results a `depends` operand may name (Argo enhanced depends logic).
_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned")


def depends_results(depends: str) -> dict[str, set[str]]:
    """Task name -> the results a `depends` expression names for it ("" = the bare name)."""
    named: dict[str, set[str]] = {}
    for token in _tokenize(depends):
        if token.kind == "name":
            task, _, result = token.text.partition(".")
            if result and result not in _RESULTS:
                raise ExprError(f"depends: unsupported task result '.{result}' in {depends!r}")
            named.setdefault(task, set()).add(result)
    return named


def depends_tasks(depends: str) -> set[str]:
    """The task names a `depends` expression refers to."""
    return set(depends_results(depends))


def evaluate_depends(depends: str, phases: Mapping[str, str]) -> bool:
    """Whether a task with this `depends` runs, given the finished tasks' phases.

    A bare `task` means `task.Succeeded || task.Skipped || task.Daemoned`, as in Argo.
    """
    variables: dict[str, Value] = {}
    for task in depends_tasks(depends):
        phase = phases.get(task)
        if phase is None:
            raise ExprError(f"depends: task {task!r} has not finished")
        for result in _RESULTS:
            variables[f"{task}.{result}"] = phase == result
        variables[task] = phase in ("Succeeded", "Skipped", "Daemoned")
    return _truth(evaluate(depends, variables))
