"""Span statements on the received bytes (gateway/ottl/wire.py) do exactly what they do on the parsed request.

Every test runs the same statements both ways, the OTLP classes on the parsed request (the slow path) and
``WirePlan`` on its serialized bytes (the fast path), and compares the requests that come out, including on
input no OTLP SDK writes (a value before its key, a key given twice, unknown fields, long varints) and with
errors. Statements the bytes cannot run are left to the slow path.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gateway.ottl import (
    CompiledCondition,
    ErrorReporter,
    OttlRunError,
    StatementGroup,
    WirePlan,
    compile_condition,
    compile_statement,
    set_any,
)
from gateway.protos.otelgw.ottl_views_pb2 import TracesEdit

BENCH = ['delete_key(attributes, "network.peer.address")', 'delete_key(attributes, "url.scheme")',
         'set(attributes["http.method"], attributes["http.request.method"])', "truncate_all(attributes, 64)",
         'replace_pattern(attributes["http.route"], "\\\\{id\\\\}", "{customer_id}") where kind == SPAN_KIND_SERVER']


def kv(key: str, value: Any) -> bytes:
    message = KeyValue(key=key)
    set_any(message.value, value)
    return message.SerializeToString()


def any_value(value: Any) -> bytes:
    message = AnyValue()
    set_any(message, value)
    return message.SerializeToString()


def field(number: int, data: bytes) -> bytes:
    """A length-delimited field (tags and lengths below 128)."""
    assert number < 16 and len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


#: KeyValues as no SDK writes them, each with what it means.
ODD = {
    "value first": field(2, any_value("v1")) + field(1, b"odd.a"),
    "key twice": field(1, b"odd.first") + field(1, b"odd.b") + field(2, any_value("v2")),
    "same key twice": field(1, b"odd.j") + field(2, any_value("v3")) + field(1, b"odd.j"),
    "two values": field(1, b"odd.c") + field(2, any_value("x" * 80)) + field(2, any_value(7)),
    "string then int": field(1, b"odd.d") + field(2, field(1, b"s") + b"\x18\x05"),
    "unknown field": field(1, b"odd.e") + field(2, any_value("v")) + b"\x78\x01",
    "unknown in value": field(1, b"odd.f") + field(2, any_value("y" * 90) + b"\x78\x01"),
    "long varint": b"\x0a\x85\x00odd.g" + field(2, any_value("z" * 70)),
    "key only": field(1, b"odd.h"),
    "empty key": field(2, any_value("empty")),
    "empty value": field(1, b"odd.i") + b"\x12\x00",
    "nothing": b"",
}


def request(spans: list[dict[str, Any]], resources: int = 1) -> bytes:
    """A serialized request: each span's ``attributes`` is a list of (key, value) or raw KeyValue bytes."""
    edit = TracesEdit()
    for r in range(resources):
        rs = edit.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", f"svc{r}"))
        ss = rs.scope_spans.add()
        ss.scope.name = "lib"
        for i, fields in enumerate(spans):
            span = ss.spans.add(trace_id=bytes([i % 255 + 1]) * 16, span_id=bytes([i % 255 + 1]) * 8,
                                name=fields.get("name", "op"), kind=fields.get("kind", 2))
            for item in fields.get("attributes", []):
                span.attributes.append(item if isinstance(item, bytes) else kv(*item))
    return edit.SerializeToString()


def groups(statements: list[str], conditions: list[str] = (), error_mode: str = "ignore",  # type: ignore[assignment]
           errors: list[str] | None = None) -> list[StatementGroup]:
    reporter = ErrorReporter(logging.getLogger("test"), (errors if errors is not None else []).append)
    compiled: list[CompiledCondition] = [compile_condition(c, "span") for c in conditions]
    return [StatementGroup("traces", "span", [compile_statement(s, "span") for s in statements], compiled,
                           error_mode, reporter)]


def both(statements: list[str], data: bytes, conditions: list[str] = ()) -> tuple[Any, Any]:  # type: ignore[assignment]
    """(slow result, fast result) as parsed requests; each path counts its own errors, which must agree."""
    slow_errors: list[str] = []
    fast_errors: list[str] = []
    slow = ExportTraceServiceRequest.FromString(data)
    changed = False
    for group in groups(statements, conditions, errors=slow_errors):
        changed |= group.run(slow)
    plan = WirePlan.of(groups(statements, conditions, errors=fast_errors))
    assert plan is not None, "these statements run on the bytes"
    edited = plan.run(data)
    assert slow_errors == fast_errors
    assert (edited is not None) == changed
    fast = ExportTraceServiceRequest.FromString(edited) if edited is not None else \
        ExportTraceServiceRequest.FromString(data)
    return slow, fast


def assert_same(statements: list[str], data: bytes, conditions: list[str] = ()) -> Any:  # type: ignore[assignment]
    slow, fast = both(statements, data, conditions)
    assert fast == slow
    return fast


def attributes(batch: Any, span: int = 0) -> list[tuple[str, Any]]:
    from gateway.ottl import from_any
    return [(a.key, from_any(a.value)) for a in batch.resource_spans[0].scope_spans[0].spans[span].attributes]


BENCH_SPANS = [
    {"kind": 2, "attributes": [("network.peer.address", "10.0.0.1"), ("http.route", "/api/orders/{id}"),
                               ("http.response.status_code", 200), ("http.request.method", "GET"),
                               ("url.scheme", "https"), ("server.address", "api.internal")]},
    {"kind": 3, "attributes": [("http.route", "/api/orders/{id}"), ("http.request.method", "POST"),
                               ("url.full", "https://shop/" + "p" * 100)]},
    {"kind": 2, "attributes": []},
]


def test_the_benchmarks_statements() -> None:
    out = assert_same(BENCH, request(BENCH_SPANS, resources=2))
    assert attributes(out) == [("http.route", "/api/orders/{customer_id}"), ("http.response.status_code", 200),
                               ("http.request.method", "GET"), ("server.address", "api.internal"),
                               ("http.method", "GET")]
    assert attributes(out, 1) == [("http.route", "/api/orders/{id}"), ("http.request.method", "POST"),
                                  ("url.full", "https://shop/" + "p" * 51), ("http.method", "POST")]


STATEMENTS = [
    ['delete_key(attributes, "b")', 'delete_key(attributes, "absent")'],
    ['delete_matching_keys(attributes, "^odd\\\\.")'],
    ['keep_keys(attributes, ["a", "odd.b", "odd.d", ""])'],
    ['keep_matching_keys(attributes, "^[ab]$")'],
    ["truncate_all(attributes, 3)"],
    ["truncate_all(attributes, 0)"],
    ["truncate_all(attributes, 200)"],
    ['set(attributes["a"], "new")', 'set(attributes["fresh"], "")', 'set(attributes["n"], 42)'],
    ['set(attributes["m"], {"k": [1, 2.5, true, "s"]})', 'set(attributes["b"], nil)', 'set(attributes["l"], [])'],
    ['set(attributes["copy.a"], attributes["a"])', 'set(attributes["a"], attributes["b"])',
     'set(attributes["none"], attributes["absent"])', 'set(attributes["nil"], attributes["odd.h"])'],
    ['set(attributes["odd.a"], "w")', 'set(attributes["odd.b"], "w")', 'set(attributes["odd.c"], "w")',
     'set(attributes["odd.e"], "w")', 'set(attributes["odd.f"], 3)', 'set(attributes["odd.g"], "w")',
     'set(attributes[""], "w")', 'set(attributes["odd.i"], "w")'],
    ['set(attributes["c.odd"], attributes["odd.c"])', 'set(attributes["d.odd"], attributes["odd.d"])',
     'set(attributes["f.odd"], attributes["odd.f"])', 'set(attributes["g.odd"], attributes["odd.g"])'],
    ['replace_pattern(attributes["a"], "^(.)", "<$1>")', 'replace_pattern(attributes["n"], "4", "5")',
     'replace_pattern(attributes["b"], "b", "x", SHA256, "h:%s")'],
    ['replace_match(attributes["a"], "a*", "glob")'],
    ['replace_all_matches(attributes, "*b*", "glob")', 'replace_all_matches(attributes, "", "empty")'],
    ['replace_all_patterns(attributes, "value", "[a-d]", "<$0>")',
     'replace_all_patterns(attributes, "value", "^$", "e")'],
    ['replace_all_patterns(attributes, "key", "^(odd)\\.", "even.$1.")', 'delete_key(attributes, "even.odd.b")',
     'replace_all_patterns(attributes, "key", "^$", "was.empty")', 'set(attributes["z"], attributes["even.odd.a"])'],
    ['replace_all_patterns(attributes, "value", "b", "x", SHA256, "h:%s")'],
    ['set(attributes["hit"], true) where attributes["a"] == "aaa"', 'delete_key(attributes, "a") where name == "x"',
     'set(attributes["both"], Concat([attributes["a"], attributes["b"], name], "|"))'],
    ['set(cache["v"], attributes["b"])', 'set(attributes["from.cache"], cache["v"])',
     'set(attributes["len"], Len(attributes["a"]))', 'set(attributes["all"], Len(attributes))'],
    ['set(name, Concat([name, attributes["a"]], "-"))', 'set(status.code, 2) where attributes["a"] == "aaa"',
     'set(status.message, "m")', 'set(trace_state, "k=v")', 'set(kind, 3) where IsRootSpan()',
     'set(end_time_unix_nano, start_time_unix_nano + 5)', 'set(dropped_attributes_count, Len(attributes))',
     'set(attributes["id"], span_id.string)'],
    ['set(attributes["svc"], resource.attributes["service.name"]) where resource.attributes["service.name"] == "svc1"',
     'set(attributes["scope"], scope.name)'],
]

ODD_SPANS = [
    {"name": "x", "attributes": [("a", "aaa"), ("b", "bbb"), ("b", "dup"), ("n", 4), ("f", 1.5), ("t", True),
                                 ("raw", b"\x00\x01"), ("arr", [1, "two"]), ("map", {"k": "v"}),
                                 ("uni", "é" * 40), ("uni2", "é" * 70), ("long", "L" * 300), ("es", "")]},
    {"name": "odd", "attributes": list(ODD.values())},
    {"name": "none"},
]


@pytest.mark.parametrize("statements", STATEMENTS, ids=lambda s: s[0][:40])
def test_statements_on_odd_input(statements: list[str]) -> None:
    assert_same(statements, request(ODD_SPANS, resources=2))


def test_group_conditions_and_the_benchmark_on_odd_input() -> None:
    assert_same(BENCH, request(ODD_SPANS), conditions=['name != "none"', 'attributes["a"] == "aaa"'])
    assert_same(['set(attributes["k"], 1)'], request(ODD_SPANS), conditions=['attributes["odd.b"] == "v2"'])


def test_errors_are_reported_and_counted_alike() -> None:
    failing = ['set(attributes["parsed"], ParseJSON(attributes["a"]))', 'set(attributes["seen"], true)']
    out = assert_same(failing, request(ODD_SPANS))
    assert ("seen", True) in attributes(out)
    data = request(ODD_SPANS)
    with pytest.raises(OttlRunError, match="span 'x' trace_id=" + "01" * 16):
        plan = WirePlan.of(groups(failing, error_mode="propagate"))
        assert plan is not None
        plan.run(data)


def test_nothing_ran_means_no_bytes() -> None:
    plan = WirePlan.of(groups(['set(attributes["x"], 1) where name == "nobody"']))
    assert plan is not None and plan.run(request(ODD_SPANS)) is None


@pytest.mark.parametrize("statement", [
    'merge_maps(attributes, {"a": 1}, "upsert")', 'set(attributes, {"a": 1})', "limit(attributes, 1)",
    "flatten(attributes)", 'delete_key(attributes["map"], "k")', 'truncate_all(attributes["map"], 1)',
    'set(attributes["map"]["k"], 1)', 'set(resource.attributes["x"], 1)',
    'set(attributes["x"], attributes["map"]["k"])',
])
def test_what_the_bytes_do_not_run_stays_on_the_parsed_request(statement: str) -> None:
    assert WirePlan.of(groups(['delete_key(attributes, "a")', statement])) is None


def test_only_span_groups_of_traces_run_on_bytes() -> None:
    reporter = ErrorReporter(logging.getLogger("test"), lambda s: None)
    event = StatementGroup("traces", "spanevent", [compile_statement('delete_key(attributes, "a")', "spanevent")],
                           [], "ignore", reporter)
    log = StatementGroup("logs", "log", [compile_statement('delete_key(attributes, "a")', "log")], [], "ignore",
                         reporter)
    assert WirePlan.of([event]) is None and WirePlan.of([log]) is None and WirePlan.of([]) is None


def test_resource_scope_and_unknown_fields_pass_through() -> None:
    real = ExportTraceServiceRequest.FromString(request(BENCH_SPANS))
    rs = real.resource_spans[0]
    rs.schema_url = "https://schema/1"
    rs.resource.dropped_attributes_count = 3
    rs.scope_spans[0].scope.version = "1.0"
    span = rs.scope_spans[0].spans[0]
    span.trace_state = "a=b"
    span.events.add(name="ev", time_unix_nano=5).attributes.add(key="e").value.string_value = "v"
    span.links.add(trace_id=b"t" * 16, span_id=b"s" * 8)
    span.status.code = 2
    span.status.message = "boom"
    span.flags = 257
    span.dropped_attributes_count = 1
    data = real.SerializeToString() + b"\xf8\x01\x07"  # and an unknown field of the request
    assert_same(BENCH, data)
    # A resource split in two occurrences merges as in OTLP: its attributes are read whole.
    split = (field(1, field(1, field(1, kv("service.name", "svc1"))) + field(1, field(1, kv("tier", "gold")))
                   + field(2, field(2, b"")))
             )
    assert_same(['set(attributes["tier"], resource.attributes["tier"])'], split + request(BENCH_SPANS))


KEYS = st.sampled_from(["a", "b", "c", "http.route", "odd.b", ""])
VALUES = st.one_of(st.text(max_size=150), st.integers(-2**63, 2**63 - 1), st.booleans(), st.binary(max_size=5),
                   st.floats(allow_nan=False), st.lists(st.integers(0, 3), max_size=2),
                   st.dictionaries(st.sampled_from(["x", "y"]), st.text(max_size=3), max_size=2))
ATTRIBUTE = st.one_of(st.tuples(KEYS, VALUES), st.sampled_from(list(ODD.values())))
STATEMENT = st.sampled_from([
    'delete_key(attributes, "a")', 'delete_key(attributes, "")', 'delete_matching_keys(attributes, "^o")',
    'keep_keys(attributes, ["a", "c"])', "truncate_all(attributes, 4)", "truncate_all(attributes, 70)",
    'set(attributes["b"], attributes["a"])', 'set(attributes["c"], "set")', 'set(attributes["odd.b"], 1)',
    'set(attributes["a"], attributes["odd.b"])', 'replace_pattern(attributes["c"], "[0-9]", "#")',
    'set(attributes["hit"], true) where attributes["b"] == attributes["a"]', 'set(attributes[""], attributes["c"])',
    'replace_all_patterns(attributes, "key", "^[ab]$", "c")', 'replace_all_patterns(attributes, "value", "1", "")',
    'replace_all_matches(attributes, "*", "m")',
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(ATTRIBUTE, max_size=8), min_size=1, max_size=3), st.lists(STATEMENT, min_size=1,
                                                                                      max_size=5))
def test_any_attributes_any_statements(spans: list[list[Any]], statements: list[str]) -> None:
    assert_same(statements, request([{"attributes": attributes} for attributes in spans]))


def test_caches_stay_bounded_and_do_not_change_results() -> None:
    from gateway.ottl import wire
    spans = [{"attributes": [("id", f"value {i}"), ("http.route", f"/r/{i % 3}")]} for i in range(3 * wire._KEYS_LIMIT)]
    statements = ['set(attributes["copy"], attributes["id"])', 'replace_pattern(attributes["http.route"], "1", "one")']
    for _ in range(2):  # the second time, what recurs comes from the caches
        out = assert_same(statements, request(spans))
    assert attributes(out, 4) == [("id", "value 4"), ("http.route", "/r/one"), ("copy", "value 4")]
    assert max(len(wire._KEYS), len(wire._STRINGS), len(wire._ENCODED)) <= wire._KEYS_LIMIT


def test_keys_learnt_from_the_key_field_are_the_keys_the_otlp_classes_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_learn`` reads a canonical KeyValue's key through the table of key fields; the rest through the OTLP
    class. Both, new and from the tables (also after the tables were emptied), give what ``KeyValue`` reads."""
    from gateway.ottl import wire
    monkeypatch.setattr(wire, "_KEYS_LIMIT", 4)
    monkeypatch.setattr(wire, "_KEY_FIELDS", {})
    samples = [*ODD.values(), kv("a", "x"), kv("a", "y"), kv("é", 1), kv("k" * 127, "v"), kv("k" * 128, "v"),
               kv("n", "v" * 300), kv("", "v"), kv("e", ""), kv("b", {"m": 1}), field(1, b"odd") + b"\x12\x00"]
    for _ in range(3):
        for sample in samples:
            assert wire._learn(sample) == KeyValue.FromString(sample).key
            assert len(wire._KEY_FIELDS) <= 4


def test_copies_and_truncation_remembered_by_the_statements_do_not_change_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``set`` from another attribute remembers what it made of a source KeyValue, ``truncate_all`` which
    KeyValues are short: with small tables, emptied often, every pass still equals the parsed request's."""
    from gateway.ottl import wire
    monkeypatch.setattr(wire, "_KEYS_LIMIT", 16)
    spans = [{"attributes": [("method", ["GET", "POST", "PUT"][i % 3]), ("n", i % 5), ("id", f"id-{i}"),
                             ("route", "/r/" + "x" * (i % 7) * 3), *([("long", "L" * 30)] if i % 11 == 0 else []),
                             *([("http.method", "old")] if i % 13 == 0 else [])]} for i in range(200)]
    statements = ['set(attributes["http.method"], attributes["method"])', 'set(attributes["copy.n"], attributes["n"])',
                  'set(attributes["none"], attributes["odd.h"])', "truncate_all(attributes, 12)",
                  'set(attributes["after"], attributes["long"])', "truncate_all(attributes, 400)",
                  'set(attributes["again"], attributes["http.method"])', 'delete_key(attributes, "copy.n")']
    data = request([*spans, {"attributes": list(ODD.values())}])
    for _ in range(12):  # one miss in eight is remembered: later passes run from the tables
        out = assert_same(statements, data)
    assert attributes(out, 11)[-3:] == [("http.method", "PUT"), ("after", "LLLLLLLLLLLL"), ("again", "PUT")]
    # Spans of attributes seen short before, with one long attribute first, last or alone.
    recurring = [("a", "short"), ("b", 1), ("c", "tiny")]
    spans = [{"attributes": [*recurring]} for _ in range(40)] + [
        {"attributes": [("long", "L" * 20), *recurring]}, {"attributes": [*recurring, ("long", "L" * 20)]},
        {"attributes": [("long", "L" * 20)]}, {"attributes": [("a", "short"), ("c", "x" * 9)]}]
    for _ in range(12):
        out = assert_same(["truncate_all(attributes, 8)"], request(spans))
    assert [attributes(out, i) for i in (40, 41, 42, 43)] == [
        [("long", "L" * 8), *recurring], [*recurring, ("long", "L" * 8)], [("long", "L" * 8)],
        [("a", "short"), ("c", "x" * 8)]]
