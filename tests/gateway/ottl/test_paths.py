"""Every path, table-driven: read, and where settable, write then read back, against OTLP messages."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.ottl import CompileError, Time, compile_condition, compile_statement

from .helpers import SPAN_ID, TRACE_ID, datapoint_ctx, log_ctx, span_ctx, value

START = 1_700_000_000_000_000_000

READS: list[tuple[str, Any, str, Any]] = [
    # (context, path, expected value, value to set or None for read-only)
    ("span", "name", "GET /api/orders", "renamed"),
    ("span", "span.name", "GET /api/orders", "renamed"),
    ("span", "kind", 2, 3),
    ("span", "trace_id", TRACE_ID, b"\x01" * 16),
    ("span", "trace_id.string", TRACE_ID.hex(), "01" * 16),
    ("span", "span_id", SPAN_ID, b"\x02" * 8),
    ("span", "span_id.string", SPAN_ID.hex(), "02" * 8),
    ("span", "parent_span_id.string", "", "03" * 8),
    ("span", "trace_state", "", "k=v"),
    ("span", "status.code", 2, 1),
    ("span", "status.message", "boom", "fine"),
    ("span", "start_time_unix_nano", START, START + 5),
    ("span", "end_time_unix_nano", START + 250_000_000, START + 9),
    ("span", "start_time", Time(START), Time(START + 7)),
    ("span", "end_time", Time(START + 250_000_000), Time(START + 8)),
    ("span", "duration", 250_000_000, None),
    ("span", "dropped_attributes_count", 0, 4),
    ("span", 'attributes["code"]', 200, 201),
    ("span", 'span.attributes["ok"]', True, False),
    ("span", 'attributes["nested"]["list"][1]', "two", "three"),
    ("span", 'attributes["absent"]', None, "now"),
    ("span", 'resource.attributes["service.name"]', "checkout", "billing"),
    ("span", "resource.dropped_attributes_count", 0, 1),
    ("span", "scope.name", "io.opentelemetry.flask", "other"),
    ("span", "instrumentation_scope.version", "1.2", "2.0"),
    ("span", 'scope.attributes["scope.attr"]', "s", "t"),
    ("span", 'cache["k"]', None, "cached"),
    ("log", "body", '{"msg": "failed", "user": "ann"}', "plain"),
    ("log", "body.string", '{"msg": "failed", "user": "ann"}', "plain"),
    ("log", "severity_number", 17, 9),
    ("log", "severity_text", "ERROR", "INFO"),
    ("log", "time", Time(START), Time(START + 1)),
    ("log", "observed_time_unix_nano", 0, 5),
    ("log", "trace_id.string", TRACE_ID.hex(), "04" * 16),
    ("log", "log.span_id", SPAN_ID, b"\x05" * 8),
    ("log", 'attributes["log.file.name"]', "app.log", "b.log"),
    ("log", "flags", 0, 1),
    ("datapoint", "value_double", 12.5, 3.5),
    ("datapoint", "time_unix_nano", 5, 6),
    ("datapoint", "start_time", Time(1), Time(2)),
    ("datapoint", 'attributes["http.route"]', "/a", "/b"),
    ("datapoint", "metric.name", "http.server.duration", "renamed"),
    ("datapoint", "metric.unit", "ms", "s"),
    ("datapoint", "metric.type", 2, None),
    ("datapoint", "metric.is_monotonic", True, False),
]

CONTEXTS = {"span": span_ctx, "log": log_ctx, "datapoint": datapoint_ctx}


@pytest.mark.parametrize(("context", "path", "expected", "new"), READS, ids=[f"{c}:{p}" for c, p, *_ in READS])
def test_path(context: str, path: str, expected: Any, new: Any) -> None:
    ctx = CONTEXTS[context]()
    assert value(path, ctx) == expected
    if new is None:
        with pytest.raises(CompileError, match="cannot be set"):
            compile_statement(f"set({path}, 1)", context)
        return
    ctx.cache["new"] = new
    compile_statement(f'set({path}, cache["new"])', context).run(ctx)
    assert value(path, ctx) == new


def test_parsed_body_keys() -> None:
    ctx = log_ctx()
    compile_statement("set(body, ParseJSON(body))", "log").run(ctx)
    assert value('body["user"]', ctx) == "ann"
    compile_statement('set(body["user"], "bob")', "log").run(ctx)
    assert value("body", ctx) == {"msg": "failed", "user": "bob"}
    compile_statement('delete_key(body, "msg")', "log").run(ctx)
    assert value("body", ctx) == {"user": "bob"}


def test_setting_a_wrong_type_is_a_run_time_error() -> None:
    with pytest.raises(TypeError, match="expected a string"):
        compile_statement("set(name, 1)", "span").run(span_ctx())
    with pytest.raises(TypeError, match="expected 16 bytes"):
        compile_statement('set(trace_id, "x")', "span").run(span_ctx())


@pytest.mark.parametrize(("context", "path", "message"), [
    ("span", "nme", "span has no field 'nme'"),
    ("span", "severity_text", "span has no field 'severity_text'"),
    ("log", "kind", "log has no field 'kind'"),
    ("datapoint", "metric.attributes", "metric has no attributes"),
    ("resource", 'scope.name', "the resource context has no scope"),
    ("span", "cache.x", "cache takes keys"),
])
def test_unknown_paths_are_compile_errors(context: str, path: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        compile_condition(f"{path} == nil", context)


def test_comparisons_follow_ottl_typing() -> None:
    ctx = span_ctx()
    for condition, expected in [
        ('attributes["code"] == 200', True),
        ('attributes["code"] == 200.0', True),
        ('attributes["code"] == "200"', False),
        ('attributes["ok"] == 1', False),
        ('attributes["absent"] == nil', True),
        ('attributes["code"] != nil', True),
        ('name < "H"', True),
        ('attributes["code"] > "a"', False),  # different types are not ordered
        ("start_time < end_time", True),
        ("kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR", True),
        ('not (name == "x" or kind == SPAN_KIND_CLIENT)', True),
        ('resource.attributes["service.name"] == "checkout" and IsMatch(name, "^GET")', True),
        ("trace_id == 0x5b8efff798038103d269b633813fc60c", True),
    ]:
        assert bool(compile_condition(condition, "span").fn(ctx)) is expected, condition


def test_condition_levels_say_what_they_read() -> None:
    assert compile_condition('resource.attributes["a"] == "b"', "span").level == 0
    assert compile_condition('scope.name == "b" and resource.attributes["a"] == nil', "span").level == 1
    assert compile_condition('name == "b" and resource.attributes["a"] == nil', "span").level == 2
    assert compile_condition("IsRootSpan()", "span").level == 2
