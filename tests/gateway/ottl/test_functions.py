"""Every editor and converter, table-driven, against OTLP messages."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from gateway.ottl import CompileError, Time, compile_statement

from .helpers import attributes_of, check, datapoint_ctx, log_ctx, run, span_ctx, value

ORIGINAL = attributes_of(span_ctx().item)


def changed(after: dict[str, Any]) -> dict[str, Any]:
    """The attributes that differ from the original span's, with removed keys as ``<gone>``."""
    out = {k: v for k, v in after.items() if ORIGINAL.get(k, "<absent>") != v}
    out.update({k: "<gone>" for k in ORIGINAL if k not in after})
    return out


EDITOR_CASES: list[tuple[str, dict[str, Any]]] = [
    ('set(attributes["new"], "v")', {"new": "v"}),
    ('set(attributes["code"], attributes["code"] + 1)', {"code": 201}),
    ('set(attributes["code"], nil)', {}),  # setting nil does nothing, as in the Collector
    ('set(attributes["nested"]["inner"]["leaf"], "y")', {"nested": {"inner": {"leaf": "y"}, "list": [1, "two"]}}),
    ('set(attributes["m"], {"a": [1, 2.5, true]})', {"m": {"a": [1, 2.5, True]}}),
    ('delete_key(attributes, "user.email")', {"user.email": "<gone>"}),
    ('delete_key(attributes, "absent")', {}),
    ('delete_matching_keys(attributes, "^(http|user)\\\\.")',
     {"http.route": "<gone>", "http.url": "<gone>", "user.email": "<gone>"}),
    ('keep_keys(attributes, ["code", "ok"])',
     {k: "<gone>" for k in ORIGINAL if k not in ("code", "ok")}),
    ('keep_matching_keys(attributes, "^http")', {k: "<gone>" for k in ORIGINAL if not k.startswith("http")}),
    ('limit(attributes, 2, ["ok"])', {k: "<gone>" for k in ORIGINAL if k not in ("http.route", "ok")}),
    ("truncate_all(attributes, 4)", {"http.route": "/api", "http.url": "http", "user.email": "ann@",
                                     "payload": '{"a"', "kv": "a=1 "}),
    ('replace_pattern(attributes["http.url"], "token=[^&]+", "token=***")',
     {"http.url": "https://shop/api/orders/42?token=***"}),
    ('replace_pattern(attributes["http.url"], "orders/(\\\\d+)", "orders/$$1-$1-${1}x")',
     {"http.url": "https://shop/api/orders/$1-42-42x?token=s3cret"}),
    ('replace_pattern(attributes["user.email"], "^(.*)@", "$1@", SHA256, "h:%s")',
     {"user.email": "h:" + hashlib.sha256(b"ann@").hexdigest() + "example.com"}),
    ('replace_all_patterns(attributes, "value", "\\\\d+", "N")',
     {"http.url": "https://shop/api/orders/N?token=sNcret", "kv": "a=N b='two words'",
      "payload": '{"a": {"b": [N, N]}, "c": "d"}'}),
    ('replace_all_patterns(attributes, "key", "^http\\\\.", "h.")',
     {"http.route": "<gone>", "http.url": "<gone>", "h.route": ORIGINAL["http.route"],
      "h.url": ORIGINAL["http.url"]}),
    ('replace_match(attributes["http.route"], "/api/*", "/api/{x}")', {"http.route": "/api/{x}"}),
    ('replace_match(attributes["http.route"], "/other/*", "nope")', {}),
    ('replace_all_matches(attributes, "*@example.com", "redacted")', {"user.email": "redacted"}),
    ('merge_maps(attributes, ParseJSON(attributes["payload"]), "upsert")', {"a": {"b": [1, 2]}, "c": "d"}),
    ('merge_maps(attributes, {"code": 1, "z": 2}, "insert")', {"z": 2}),
    ('merge_maps(attributes, {"code": 1, "z": 2}, "update")', {"code": 1}),
    ('flatten(attributes["nested"])',
     {"nested": {"inner.leaf": "x", "list.0": 1, "list.1": "two"}}),
    ('flatten(attributes["nested"], "p", 0)',
     {"nested": {"p.inner": {"leaf": "x"}, "p.list": [1, "two"]}}),
    ('flatten(attributes["deep"], "", 1)', {"deep": {"0.1": {"2": "v"}}}),
]


@pytest.mark.parametrize(("statement", "expected"), EDITOR_CASES, ids=[c[0] for c in EDITOR_CASES])
def test_editor(statement: str, expected: dict[str, Any]) -> None:
    ctx = span_ctx()
    if "deep" in statement:
        ctx.item.attributes.add(key="deep").value.kvlist_value.values.add(key="0").value.kvlist_value.values.add(
            key="1").value.kvlist_value.values.add(key="2").value.string_value = "v"
    ctx = run(statement, ctx)
    assert changed(attributes_of(ctx.item)) == expected


CONVERTER_CASES: list[tuple[str, Any]] = [
    ('Concat([name, "-", attributes["code"], nil], "")', "GET /api/orders-200<nil>"),
    ('Split("a,b,,c", ",")', ["a", "b", "", "c"]),
    ('ParseJSON(attributes["payload"])["a"]["b"][1]', 2),
    ('ParseKeyValue(attributes["kv"])', {"a": "1", "b": "two words"}),
    ('ParseKeyValue("a:1|b:2", ":", "|")', {"a": "1", "b": "2"}),
    ('IsMatch(attributes["http.url"], "token=")', True),
    ('IsMatch(attributes["absent"], ".*")', False),
    ('IsString(attributes["code"])', False),
    ('IsString(name)', True),
    ('IsInt(attributes["code"])', True),
    ('IsInt(attributes["ok"])', False),
    ('Int("42")', 42),
    ('Int(attributes["ratio"])', 0),
    ('Int("x")', None),
    ('Int(true)', 1),
    ('Double("2.5")', 2.5),
    ('Double(attributes["code"])', 200.0),
    ('String(attributes["code"])', "200"),
    ('String(attributes["ok"])', "true"),
    ('String(span_id)', "eee19b7ec3c1b174"),
    ('Len(attributes["nested"]["list"])', 2),
    ('Len(name)', 15),
    ('ConvertCase(name, "upper")', "GET /API/ORDERS"),
    ('ConvertCase("HTTPServer requestCount", "snake")', "httpserver_request_count"),
    ('ConvertCase("http_server_request", "camel")', "HttpServerRequest"),
    ('Substring(name, 4, 4)', "/api"),
    ('SHA256("abc")', hashlib.sha256(b"abc").hexdigest()),
    ('FNV("hello")', -6615550055289275125),
    ('UnixNano(start_time)', 1_700_000_000_000_000_000),
    ('UnixNano(Time("2023-11-14T22:13:20Z", "%Y-%m-%dT%H:%M:%SZ"))', 1_700_000_000_000_000_000),
    ('ExtractPatterns(attributes["http.url"], "orders/(?P<order>\\\\d+)")', {"order": "42"}),
    ('ExtractPatterns(attributes["http.url"], "missing(?P<x>\\\\d+)")', {}),
    ("IsRootSpan()", True),
    ("SpanID(0xeee19b7ec3c1b174) == span_id", True),
    ("TraceID(0x5b8efff798038103d269b633813fc60c) == trace_id", True),
    ("end_time - start_time", 250_000_000),
    ("duration / 1000000", 250),
    ("7 / -2", -3),
    ("(1 + 2) * 3 - 1.5", 7.5),
]


@pytest.mark.parametrize(("expression", "expected"), CONVERTER_CASES, ids=[c[0] for c in CONVERTER_CASES])
def test_converter(expression: str, expected: Any) -> None:
    assert value(expression, span_ctx()) == expected


def test_now_is_a_time_close_to_the_clock() -> None:
    import time

    now = value("Now()", span_ctx())
    assert isinstance(now, Time) and abs(now.ns - time.time_ns()) < 10**9


@pytest.mark.parametrize(("expression", "message"), [
    ('Substring(name, 10, 40)', "out of range"),
    ('ParseJSON("not json")', "Expecting value"),
    ('name + 1', "cannot compute string + int"),
    ("attributes[\"code\"] / 0", "division by zero"),
    ('Len(attributes["code"])', "unsupported type int"),
])
def test_converter_errors_at_run_time(expression: str, message: str) -> None:
    compiled = compile_statement(f'set(cache["v"], {expression})', "span")
    with pytest.raises(Exception, match=re.escape(message)):
        compiled.run(span_ctx())


def test_log_and_datapoint_contexts() -> None:
    ctx = run('merge_maps(attributes, ParseJSON(body), "upsert") where severity_number >= SEVERITY_NUMBER_ERROR',
              log_ctx())
    assert attributes_of(ctx.item) == {"log.file.name": "app.log", "msg": "failed", "user": "ann"}
    ctx = run('set(body, Concat([severity_text, body], ": "))', log_ctx())
    assert ctx.item.body.string_value == 'ERROR: {"msg": "failed", "user": "ann"}'
    ctx = run('set(attributes["unit"], metric.unit) where metric.name == "http.server.duration" '
              'and value_double > 10', datapoint_ctx())
    assert attributes_of(ctx.item) == {"http.route": "/a", "unit": "ms"}
    assert check("metric.type == METRIC_DATA_TYPE_SUM and metric.is_monotonic", datapoint_ctx())
    assert check("metric.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE", datapoint_ctx())


def test_isrootspan_only_in_the_span_context() -> None:
    with pytest.raises(CompileError, match="only available in the span context"):
        compile_statement('set(attributes["r"], IsRootSpan())', "log")
