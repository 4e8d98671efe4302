"""Grammar edge cases: escaping, nesting, precedence, and the errors a statement that does not parse gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway._host.confmap import load_files
from gateway.ottl import CompileError, OttlSyntaxError, compile_statement, grammar, parse_statement
from gateway.ottl.grammar import Call, Compare, Literal, Logic, Math, Not

from .helpers import span_ctx, value


@pytest.mark.parametrize(("text", "expected"), [
    (r'"plain"', "plain"),
    (r'"quote \" inside"', 'quote " inside'),
    (r'"back\\slash"', "back\\slash"),
    (r'"tab\tnew\nline"', "tab\tnew\nline"),
    (r'"\u00e9t\u00e9"', "été"),
    (r'"regex \d+ kept"', "regex \\d+ kept"),  # an unknown escape is kept as written
    (r'"\x41"', "A"),
    (r'"ünïcode ✓"', "ünïcode ✓"),
    (r'""', ""),
])
def test_string_escapes(text: str, expected: str) -> None:
    assert value(text, span_ctx()) == expected


def test_precedence_and_nesting() -> None:
    tree = parse_statement('set(attributes["a"], Concat([Substring(name, 0, 3), "x"], "-")) '
                           'where not a == 1 and b == 2 or c == 3 + 4 * 5')
    assert isinstance(tree.editor.args[1].value, Call)
    assert tree.editor.args[1].value.args[0].value.items[0].name == "Substring"
    where = tree.where
    assert isinstance(where, Logic) and where.op == "or"
    left, right = where.items
    assert isinstance(left, Logic) and left.op == "and" and isinstance(left.items[0], Not)
    assert isinstance(right, Compare) and isinstance(right.right, Math) and right.right.op == "+"
    assert right.right.right == Math("*", Literal(4), Literal(5))
    assert value("-(2 + 3) * -2", span_ctx()) == 10
    assert value('ParseJSON("[[1, [2, 3]]]")[0][1][0]', span_ctx()) == 2
    assert isinstance(parse_statement("set(a.b.c, 1)").editor.args[0].value, grammar.Path)
    assert value("Concat(vals=[\"a\", \"b\"], delimiter=\"+\")", span_ctx()) == "a+b"


@pytest.mark.parametrize(("statement", "column", "expected"), [
    ('set(attributes["x"] "y")', 21, '","'),
    ('set(attributes["x"], "y") where', 32, "a name"),
    ('set(attributes["x"], "unterminated)', 22, '"'),
    ("set(a, b) where c @ d", 19, "a comparison"),
    ("set(a, 0x123)", 12, '")"'),
    ("set(a, [1, 2)", 13, '"]"'),
])
def test_syntax_errors_have_position_and_expectations(statement: str, column: int, expected: str) -> None:
    with pytest.raises(OttlSyntaxError) as info:
        parse_statement(statement)
    assert info.value.column == column
    if expected:
        assert any(expected in e for e in info.value.expected), info.value.expected
    assert info.value.pointer().splitlines()[1] == " " * (column - 1) + "^"


@pytest.mark.parametrize(("statement", "message"), [
    ("foo(attributes)", "unknown editor foo"),
    ("Concat(attributes)", "converters return values"),
    ("set(attributes[\"a\"], Foo())", "unknown converter Foo"),
    ("set(attributes[\"a\"], set(name, 1))", "cannot be used as values"),
    ("set(attributes[\"a\"])", "missing argument 'value'"),
    ("set(attributes[\"a\"], 1, 2)", "at most 2 arguments"),
    ("set(target=attributes[\"a\"], 1)", "positional argument after named"),
    ("set(attributes[\"a\"], IsMatch(name, \"(\"))", "invalid regular expression"),
    ("delete_key(\"a\", \"b\")", "must be a path"),
    ("delete_key(name, \"b\")", "name is not a map"),
    ("truncate_all(attributes, \"x\")", "'limit' must be an integer"),
    ("set(kind, SPAN_KIND_NOPE)", "unknown enum SPAN_KIND_NOPE"),
    ("set(attributes[\"a\"], 1) where name", ""),  # parses; a non-boolean is a run-time error
    ("set(attributes[\"a\"], 1) where 1 + 1", "must be a boolean"),
    ("replace_all_patterns(attributes, \"both\", \"x\", \"y\")", "must be one of key, value"),
])
def test_compile_errors(statement: str, message: str) -> None:
    if not message:
        compiled = compile_statement(statement, "span")
        assert compiled.condition is not None
        with pytest.raises(TypeError, match="must be a boolean"):
            compiled.condition.fn(span_ctx())
        return
    with pytest.raises(CompileError, match=message):
        compile_statement(statement, "span")


def test_dollar_dollar_in_yaml_is_a_literal_dollar(tmp_path: Path) -> None:
    # The config loader turns $$ into $ before OTTL sees the statement, so a Go-style capture group reference
    # is written $$1 in YAML (as in the Collector).
    config = tmp_path / "c.yaml"
    config.write_text(r'''statement: replace_pattern(attributes["http.url"], "orders/(\\d+)", "orders/$${1}-x")''')
    statement = load_files([config])["statement"]
    assert statement == r'replace_pattern(attributes["http.url"], "orders/(\\d+)", "orders/${1}-x")'
    ctx = span_ctx()
    compile_statement(statement, "span").run(ctx)
    assert value('attributes["http.url"]', ctx) == "https://shop/api/orders/42-x?token=s3cret"
