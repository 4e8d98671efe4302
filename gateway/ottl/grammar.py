"""OTTL's syntax: a LALR grammar (lark) and the tree it parses into.

Parsing happens once per statement, when the config loads. A syntax error becomes an ``OttlSyntaxError`` that
carries the column and what the parser expected there, so the config error can show the statement with a caret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

__all__ = ["Arg", "Call", "Compare", "Expr", "ListLit", "Literal", "Logic", "MapLit", "Math", "Neg", "Not",
           "OttlSyntaxError", "Path", "Statement", "parse_condition", "parse_statement", "parse_value"]

_GRAMMAR = r"""
statement: call (_WHERE expr)?
condition: expr
value: expr

?expr: or_
?or_: and_ | or_ _OR and_ -> or_op
?and_: not_ | and_ _AND not_ -> and_op
?not_: _NOT not_ -> not_op | cmp
?cmp: sum | sum COMP sum -> compare
?sum: product | sum ADD product -> math
?product: unary | product MUL unary -> math
?unary: "-" unary -> neg | atom
?atom: literal | path | call | "(" expr ")" | map | list

call: NAME "(" [args] ")" key*
path: NAME ("." NAME)* key*
key: "[" expr "]"
args: arg ("," arg)* ","?
arg: NAME "=" expr -> named_arg | expr -> pos_arg
map: "{" [pair ("," pair)* ","?] "}"
pair: STRING ":" expr
list: "[" [expr ("," expr)* ","?] "]"

literal: STRING -> string | FLOAT -> float | INT -> int | BYTES -> bytes
       | _TRUE -> true | _FALSE -> false | _NIL -> nil

_WHERE: "where"
_OR: "or"
_AND: "and"
_NOT: "not"
_TRUE: "true"
_FALSE: "false"
_NIL: "nil"
COMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD: "+" | "-"
MUL: "*" | "/"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(\\.|[^\\"])*"/
BYTES.2: /0x([0-9a-fA-F][0-9a-fA-F])+/
FLOAT.1: /[0-9]+\.[0-9]*([eE][+-]?[0-9]+)?/ | /\.[0-9]+([eE][+-]?[0-9]+)?/
INT: /[0-9]+/
%ignore /[ \t\r\n]+/
"""

# How expected terminals read in an error message.
_READABLE = {"NAME": "a name", "STRING": "a string", "INT": "an integer", "FLOAT": "a number", "BYTES": "bytes (0x..)",
             "COMP": "a comparison (==, !=, <, <=, >, >=)", "ADD": "+ or -", "MUL": "* or /",
             "_WHERE": '"where"', "_OR": '"or"', "_AND": '"and"', "_NOT": '"not"', "_TRUE": "true",
             "_FALSE": "false", "_NIL": "nil", "$END": "the end of the statement"}


class OttlSyntaxError(ValueError):
    """A statement that does not parse: ``column`` (1-based) and what was ``expected`` there."""

    def __init__(self, text: str, column: int, problem: str, expected: list[str]) -> None:
        self.text = text
        self.column = column
        self.problem = problem
        self.expected = expected
        want = f"; expected {', '.join(expected)}" if expected else ""
        super().__init__(f"{problem} at column {column}{want}")

    def pointer(self) -> str:
        """The statement with a caret under the column, for multi-line messages."""
        return f"{self.text}\n{' ' * (self.column - 1)}^"


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    fields: tuple[str, ...]
    keys: tuple[Any, ...]
    column: int = 0


@dataclass(frozen=True)
class Arg:
    name: str | None
    value: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    keys: tuple[Any, ...]
    column: int = 0


@dataclass(frozen=True)
class MapLit:
    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ListLit:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Math:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Neg:
    operand: Any


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    operand: Any


Expr = Literal | Path | Call | MapLit | ListLit | Math | Neg | Compare | Logic | Not


@dataclass(frozen=True)
class Statement:
    editor: Call
    where: Any = None
    text: str = field(default="", compare=False)


def unquote(token: str) -> str:
    """A double-quoted OTTL string → its value. Escapes are Go's (\\", \\\\, \\n, \\t, \\uXXXX ...)."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    try:
        value = json.loads(token)
    except ValueError:
        # JSON knows no \a \v \' or \xNN; Go does. Anything else unknown (e.g. "\d") is kept as written,
        # so a regular expression in a string needs no double escaping.
        out, i = [], 0
        simple = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
                  "v": "\v", "'": "'", "/": "/"}
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt in simple:
                    out.append(simple[nxt])
                    i += 2
                    continue
                if nxt == "x" and i + 3 < len(body) + 1:
                    try:
                        out.append(chr(int(body[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    except ValueError:
                        pass
                if nxt in "uU":
                    width = 4 if nxt == "u" else 8
                    try:
                        out.append(chr(int(body[i + 2:i + 2 + width], 16)))
                        i += 2 + width
                        continue
                    except ValueError:
                        pass
                out.append(ch + nxt)
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    assert isinstance(value, str)
    return value


@v_args(inline=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    def statement(self, editor: Call, where: Any = None) -> Statement:
        return Statement(editor, where)

    def condition(self, expr: Any) -> Any:
        return expr

    def value(self, expr: Any) -> Any:
        return expr

    def or_op(self, left: Any, right: Any) -> Logic:
        items = left.items if isinstance(left, Logic) and left.op == "or" else (left,)
        return Logic("or", (*items, right))

    def and_op(self, left: Any, right: Any) -> Logic:
        items = left.items if isinstance(left, Logic) and left.op == "and" else (left,)
        return Logic("and", (*items, right))

    def not_op(self, operand: Any) -> Not:
        return Not(operand)

    def compare(self, left: Any, op: Token, right: Any) -> Compare:
        return Compare(str(op), left, right)

    def math(self, left: Any, op: Token, right: Any) -> Math:
        return Math(str(op), left, right)

    def neg(self, operand: Any) -> Any:
        if isinstance(operand, Literal) and isinstance(operand.value, int | float) \
                and not isinstance(operand.value, bool):
            return Literal(-operand.value)
        return Neg(operand)

    def call(self, name: Token, args: Any, *keys: Any) -> Call:
        return Call(str(name), tuple(args or ()), tuple(keys), name.column or 0)

    def path(self, *parts: Any) -> Path:
        names = [p for p in parts if isinstance(p, Token)]
        keys = [p for p in parts if not isinstance(p, Token)]
        return Path(tuple(str(n) for n in names), tuple(keys), names[0].column or 0)

    def key(self, expr: Any) -> Any:
        return expr

    def args(self, *items: Arg) -> tuple[Arg, ...]:
        return items

    def named_arg(self, name: Token, value: Any) -> Arg:
        return Arg(str(name), value)

    def pos_arg(self, value: Any) -> Arg:
        return Arg(None, value)

    def map(self, *pairs: Any) -> MapLit:
        return MapLit(tuple(p for p in pairs if p is not None))

    def pair(self, key: Token, value: Any) -> tuple[str, Any]:
        return unquote(str(key)), value

    def list(self, *items: Any) -> ListLit:
        return ListLit(tuple(i for i in items if i is not None))

    def string(self, token: Token) -> Literal:
        return Literal(unquote(str(token)))

    def int(self, token: Token) -> Literal:
        return Literal(int(token))

    def float(self, token: Token) -> Literal:
        return Literal(float(token))

    def bytes(self, token: Token) -> Literal:
        digits = str(token)[2:]
        if len(digits) % 2:
            raise ValueError(f"bytes literal {token} needs an even number of hex digits")
        return Literal(bytes.fromhex(digits))

    def true(self) -> Literal:
        return Literal(True)

    def false(self) -> Literal:
        return Literal(False)

    def nil(self) -> Literal:
        return Literal(None)


@lru_cache(maxsize=3)
def _parser(start: str) -> Lark:
    return Lark(_GRAMMAR, start=start, parser="lalr", maybe_placeholders=True)


def _describe(parser: Lark, names: set[str]) -> list[str]:
    readable = []
    for name in sorted(names):
        if name in _READABLE:
            readable.append(_READABLE[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
            readable.append(f'"{pattern.value}"')
        except (KeyError, AttributeError):
            readable.append(name)
    return sorted(set(readable))


def _parse(text: str, start: str) -> Any:
    parser = _parser(start)
    try:
        tree = parser.parse(text)
    except UnexpectedEOF as exc:
        raise OttlSyntaxError(text, len(text) + 1, "unexpected end of statement",
                              _describe(parser, set(exc.expected))) from None
    except UnexpectedToken as exc:
        found = "end of statement" if exc.token.type == "$END" else repr(str(exc.token))
        column = exc.column if isinstance(exc.column, int) and exc.column > 0 else len(text) + 1
        if exc.token.type == "$END":
            column = len(text.rstrip()) + 1
        expected = set(exc.expected)
        if exc.interactive_parser is not None:  # exact: LALR's table alone lists tokens of default reductions too
            expected = set(exc.interactive_parser.accepts()) or expected
        raise OttlSyntaxError(text, column, f"unexpected {found}", _describe(parser, expected)) from None
    except UnexpectedCharacters as exc:
        raise OttlSyntaxError(text, exc.column, f"unexpected character {text[exc.pos_in_stream or 0]!r}",
                              _describe(parser, set(exc.allowed or ()))) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above are all lark raises for LALR
        raise OttlSyntaxError(text, getattr(exc, "column", 1), "syntax error", []) from None
    try:
        return _ToAst().transform(tree)
    except VisitError as exc:
        raise OttlSyntaxError(text, 1, str(exc.orig_exc), []) from None


def parse_statement(text: str) -> Statement:
    """``editor(args) [where condition]`` → ``Statement``."""
    statement = _parse(text, "statement")
    return Statement(statement.editor, statement.where, text)


def parse_condition(text: str) -> Any:
    """A boolean expression (filter conditions, ``where`` clauses) → its tree."""
    return _parse(text, "condition")


def parse_value(text: str) -> Any:
    """Any expression → its tree."""
    return _parse(text, "value")
