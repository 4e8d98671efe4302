"""Expressions, timestamps and severities, table-driven."""

from __future__ import annotations

import pytest

from plugins.receivers.filelog.operators.entry import Entry, Field, FieldError
from plugins.receivers.filelog.operators.expr import Expression, ExpressionError
from plugins.receivers.filelog.operators.timeparse import SeverityMapper, TimeParseError, TimeParser, parse_rfc3339


def entry() -> Entry:
    e = Entry({"level": "error", "code": 503, "tags": ["a", "b"], "nested": {"x": 1}},
              {"log.iostream": "stderr", "path": "/api/orders"}, 0)
    e.resource = {"k8s.namespace.name": "shop"}
    e.severity = 17
    return e


EXPRESSIONS = [
    ('body.level == "error"', True),
    ("body.code >= 500 and body.code < 600", True),
    ('attributes["log.iostream"] == "stdout"', False),
    ('attributes.path startsWith "/api" && !(body.level == "info")', True),
    ('attributes.path matches "^/api/(orders|cart)$"', True),
    ('attributes.path not matches "health"', True),
    ('resource["k8s.namespace.name"] in ["shop", "cart"]', True),
    ('"b" in body.tags', True),
    ('"c" not in body.tags', True),
    ("body.missing == nil", True),
    ("body.missing.deeper == nil", True),
    ("body.missing > 3", False),  # different types compare false, never raise
    ('body.level contains "rr" or false', True),
    ('attributes.path endsWith "orders"', True),
    ("body.nested.x + 1 == 2", True),
    ("severity >= 17", True),
    ('env("FILELOG_TEST_VAR") == "on"', True),
    ("(1 + 2) * 3 == 9", True),
    ("10 / 0 == nil", True),
    ("'single' == \"single\"", True),
]


@pytest.mark.parametrize(("text", "expected"), EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_expression(text, expected, monkeypatch):
    monkeypatch.setenv("FILELOG_TEST_VAR", "on")
    assert Expression(text).true_for(entry()) is expected


@pytest.mark.parametrize("text", ["body ==", "body.level = 1", "unknown_name", "(body", 'body matches "("', ""])
def test_bad_expressions_fail_at_compile_time(text):
    with pytest.raises(ExpressionError):
        Expression(text)


FIELDS = [("body", "body", ()), ("body.a.b", "body", ("a", "b")), ('attributes["k8s.pod.name"]', "attributes",
          ("k8s.pod.name",)), ("resource.x", "resource", ("x",)), ("attributes['a b']", "attributes", ("a b",))]


@pytest.mark.parametrize(("text", "root", "keys"), FIELDS)
def test_fields(text, root, keys):
    field = Field.parse(text)
    assert (field.root, field.keys) == (root, keys)


@pytest.mark.parametrize("text", ["level", "body.", "attributes[k]", "$body"])
def test_bad_fields(text):
    with pytest.raises(FieldError):
        Field.parse(text)


def test_field_set_and_delete_copy_shared_resources():
    shared = {"k8s.pod.name": "p"}
    a, b = Entry("x", {}, 0), Entry("y", {}, 0)
    a.resource = b.resource = shared
    Field.parse("resource.extra").set(a, 1)
    Field.parse('resource["k8s.pod.name"]').delete(b)
    assert shared == {"k8s.pod.name": "p"}
    assert a.resource == {"k8s.pod.name": "p", "extra": 1} and b.resource == {}


NS = 1_000_000_000
TIMES = [
    ("strptime", "%Y-%m-%dT%H:%M:%S.%LZ", None, "2023-11-14T22:13:20.250Z", 1_700_000_000 * NS + 250_000_000),
    ("strptime", "%Y-%m-%dT%H:%M:%S%z", None, "2023-11-14T23:13:20+01:00", 1_700_000_000 * NS),
    ("strptime", "%Y-%m-%d %H:%M:%S", "UTC", "2023-11-14 22:13:20", 1_700_000_000 * NS),
    ("strptime", "%d/%b/%Y:%H:%M:%S %z", None, "14/Nov/2023:22:13:20 +0000", 1_700_000_000 * NS),
    ("strptime", "%Y-%m-%dT%H:%M:%S.%fZ", None, "2023-11-14T22:13:20.123456789Z", 1_700_000_000_123_456_789),
    ("gotime", "2006-01-02T15:04:05.000000000Z07:00", None, "2023-11-14T22:13:20.000000001Z",
     1_700_000_000 * NS + 1),
    ("gotime", "Jan 2 2006 15:04:05", "America/New_York", "Nov 14 2023 17:13:20", 1_700_000_000 * NS),
    ("gotime", "02/01/2006 15:04:05,000", "UTC", "14/11/2023 22:13:20,500", 1_700_000_000 * NS + 500_000_000),
    ("epoch", "s", None, 1_700_000_000, 1_700_000_000 * NS),
    ("epoch", "s.ms", None, "1700000000.25", 1_700_000_000 * NS + 250_000_000),
    ("epoch", "us", None, "1700000000000001", 1_700_000_000 * NS + 1000),
    ("epoch", "ns", None, 1_700_000_000_000_000_001, 1_700_000_000 * NS + 1),
]


@pytest.mark.parametrize(("layout_type", "layout", "location", "value", "expected"), TIMES,
                         ids=[f"{t[0]} {t[1]}" for t in TIMES])
def test_time_layouts(layout_type, layout, location, value, expected):
    assert TimeParser(layout_type, layout, location).parse(value) == expected


@pytest.mark.parametrize(("layout_type", "layout", "value"), [
    ("strptime", "%Y-%m-%d", "yesterday"), ("epoch", "s", "soon"), ("epoch", "ms", None), ("strptime", "%Y", 5)])
def test_time_errors(layout_type, layout, value):
    with pytest.raises(TimeParseError):
        TimeParser(layout_type, layout, None).parse(value)


def test_rfc3339_fast_path_agrees_with_the_full_parse():
    first = parse_rfc3339("2024-02-29T23:59:59.5Z")  # fills the seconds cache
    assert first == parse_rfc3339("2024-02-29T23:59:59.500000000Z") == 1709251199_500_000_000
    assert parse_rfc3339("2024-02-29T23:59:59-01:00") == 1709254799 * NS
    assert parse_rfc3339("2024-02-29 23:59:59", 3600) == 1709247599 * NS
    assert parse_rfc3339("2024-02-29T23:59:59", None) is None
    assert parse_rfc3339("not a time") is None


SEVERITIES = [
    ("default", {}, "ERROR", 17), ("default", {}, "Warning", 13), ("default", {}, "err", 17), ("default", {}, 9, 9),
    ("default", {}, "info3", 11), ("default", {}, "critical", 0), ("otel", {}, "warning", 0),
    ("none", {}, "error", 0), ("default", {"fatal": ["panic", {"min": 900, "max": 999}]}, "PANIC", 21),
    ("default", {"fatal": [{"min": 900, "max": 999}]}, 950, 21), ("none", {"warn": "4xx"}, "404", 13),
    ("none", {"error2": 5}, 5.0, 18),
]


@pytest.mark.parametrize(("preset", "mapping", "value", "number"), SEVERITIES)
def test_severities(preset, mapping, value, number):
    assert SeverityMapper(preset, mapping, False).number(value) == number
