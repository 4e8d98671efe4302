"""The expressions of ``if``, ``router`` routes, ``filter`` and ``add``'s ``EXPR(...)``: the subset of expr-lang
that stanza configurations use, compiled once into Python closures.

    body.level == "error" and attributes["log.iostream"] != "stderr"
    body matches "^\\d{4}-"          attributes.path startsWith "/api"        not (resource.ns in ["a", "b"])

Names: ``body``, ``attributes``, ``resource``, ``timestamp``, ``severity`` (the number), ``severity_text``;
``env("NAME")``. A missing key is ``nil``; comparing values of different types is false rather than an error.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable
from typing import Any

from .entry import Entry

__all__ = ["Expression", "ExpressionError", "compile_expression"]

Evaluator = Callable[[Entry], Any]


class ExpressionError(ValueError):
    """An expression that does not parse."""


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<number>\d+\.\d*|\.\d+|\d+)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!+\-*/%().\[\],])
    | (?P<name>[A-Za-z_$][A-Za-z0-9_]*)
    )""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        pos = match.end()
        kind = match.lastgroup or ""
        value: Any = match.group(kind)
        if kind == "number":
            value = float(value) if "." in value else int(value)
        elif kind == "string":
            value = _unquote(value)
        tokens.append((kind, value))
    tokens.append(("end", None))
    return tokens


def _safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        try:
            return op(a, b)
        except TypeError:
            return False
    return run


def _matches(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and re.search(b, a) is not None


def _contains(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and b in a


def _in(a: Any, b: Any) -> bool:
    try:
        return a in b if isinstance(b, list | dict | str) and (not isinstance(b, str) or isinstance(a, str)) else False
    except TypeError:
        return False


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": _safe(operator.lt), "<=": _safe(operator.le),
    ">": _safe(operator.gt), ">=": _safe(operator.ge), "matches": _matches, "contains": _contains,
    "startsWith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b),
    "endsWith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b),
    "in": _in,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _safe(operator.add), "-": _safe(operator.sub), "*": _safe(operator.mul),
    "/": _safe(lambda a, b: a / b if b else None), "%": _safe(lambda a, b: a % b if b else None),
}
_VARIABLES: dict[str, Evaluator] = {
    "body": lambda e: e.body,
    "attributes": lambda e: e.attributes,
    "resource": lambda e: e.resource or {},
    "timestamp": lambda e: e.timestamp or None,
    "severity": lambda e: e.severity,
    "severity_text": lambda e: e.severity_text,
}


def _member(obj: Any, key: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
        return obj[key]
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, *values: str) -> str | None:
        kind, value = self.peek()
        if kind in ("op", "name") and value in values:
            self.pos += 1
            return str(value)
        return None

    def expect(self, value: str) -> None:
        if self.accept(value) is None:
            raise ExpressionError(f"expected {value!r}, got {self.peek()[1]!r}")

    def parse(self) -> Evaluator:
        result = self.or_()
        if self.peek()[0] != "end":
            raise ExpressionError(f"unexpected {self.peek()[1]!r}")
        return result

    def or_(self) -> Evaluator:
        left = self.and_()
        while self.accept("or", "||"):
            right = self.and_()
            left = (lambda a, b: lambda e: bool(a(e)) or bool(b(e)))(left, right)
        return left

    def and_(self) -> Evaluator:
        left = self.not_()
        while self.accept("and", "&&"):
            right = self.not_()
            left = (lambda a, b: lambda e: bool(a(e)) and bool(b(e)))(left, right)
        return left

    def not_(self) -> Evaluator:
        if self.accept("not", "!"):
            inner = self.not_()
            return lambda e: not inner(e)
        return self.comparison()

    def comparison(self) -> Evaluator:
        left = self.additive()
        negate = False
        if self.peek() == ("name", "not") and self.tokens[self.pos + 1][1] in ("in", "matches", "contains"):
            self.pos += 1
            negate = True
        op = self.accept(*_COMPARE)
        if op is None:
            if negate:
                raise ExpressionError("'not' must be followed by in, matches or contains here")
            return left
        right = self.additive()
        if op == "matches" and self.tokens[self.pos - 1][0] == "string":
            try:
                pattern = re.compile(self.tokens[self.pos - 1][1])
            except re.error as exc:
                raise ExpressionError(f"invalid regular expression after matches: {exc}") from None
            def compare(a: Any, _b: Any) -> bool:
                return isinstance(a, str) and pattern.search(a) is not None
        else:
            compare = _COMPARE[op]  # type: ignore[assignment]
        if negate:
            return lambda e: not compare(left(e), right(e))
        return lambda e: compare(left(e), right(e))

    def additive(self) -> Evaluator:
        left = self.multiplicative()
        while (op := self.accept("+", "-")) is not None:
            right, fn = self.multiplicative(), _ARITH[op]
            left = (lambda a, b, f: lambda e: f(a(e), b(e)))(left, right, fn)
        return left

    def multiplicative(self) -> Evaluator:
        left = self.unary()
        while (op := self.accept("*", "/", "%")) is not None:
            right, fn = self.unary(), _ARITH[op]
            left = (lambda a, b, f: lambda e: f(a(e), b(e)))(left, right, fn)
        return left

    def unary(self) -> Evaluator:
        if self.accept("-"):
            inner = self.unary()
            return lambda e: _ARITH["-"](0, inner(e))
        return self.postfix()

    def postfix(self) -> Evaluator:
        value = self.primary()
        while True:
            if self.accept("."):
                kind, name = self.take()
                if kind != "name":
                    raise ExpressionError(f"expected a name after '.', got {name!r}")
                value = (lambda v, k: lambda e: _member(v(e), k))(value, name)
            elif self.accept("["):
                key = self.or_()
                self.expect("]")
                value = (lambda v, k: lambda e: _member(v(e), k(e)))(value, key)
            else:
                return value

    def primary(self) -> Evaluator:
        kind, value = self.take()
        if kind in ("number", "string"):
            return lambda _e: value
        if kind == "op" and value == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if kind == "op" and value == "[":
            items: list[Evaluator] = []
            if not self.accept("]"):
                items.append(self.or_())
                while self.accept(","):
                    items.append(self.or_())
                self.expect("]")
            return lambda e: [item(e) for item in items]
        if kind == "name":
            if value in ("true", "false"):
                constant = value == "true"
                return lambda _e: constant
            if value == "nil":
                return lambda _e: None
            if value == "env":
                self.expect("(")
                name = self.or_()
                self.expect(")")
                return lambda e: os.environ.get(str(name(e)), "")
            if value == "$":
                return _VARIABLES["body"]
            variable = _VARIABLES.get(value)
            if variable is not None:
                return variable
            raise ExpressionError(f"unknown name {value!r}; use body, attributes, resource, timestamp, severity, "
                                  f"severity_text or env(\"NAME\")")
        raise ExpressionError(f"unexpected {value!r}" if kind != "end" else "unexpected end of expression")


class Expression:
    """A compiled expression; ``evaluate(entry)`` never raises on data."""

    __slots__ = ("_run", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._run = _Parser(text).parse()
        except IndexError:
            raise ExpressionError("unexpected end of expression") from None

    def evaluate(self, entry: Entry) -> Any:
        try:
            return self._run(entry)
        except (TypeError, ValueError, re.error, RecursionError):
            return None

    def true_for(self, entry: Entry) -> bool:
        return bool(self.evaluate(entry))


def compile_expression(text: str) -> Expression:
    return Expression(text)
