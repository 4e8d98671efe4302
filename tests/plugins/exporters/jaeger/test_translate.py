"""The OTLP → Jaeger mapping, rule by rule, decoded with gateway.protos.jaeger."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.protos.jaeger.api_v2 import collector_pb2, model_pb2
from gateway.testing import any_value, make_traces
from plugins.exporters.jaeger import wire
from plugins.exporters.jaeger.translate import Translator

TRACE = bytes(range(1, 17))
PARENT = bytes(range(20, 28))
SPAN = bytes(range(30, 38))
START = 1_700_000_123_456_789_012


def request_with(*spans: Span, resource: dict[str, Any] | None = None, scope: tuple[str, str] = ("lib", "1.2"),
                 ) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in ({"service.name": "checkout"} if resource is None else resource).items():
        rs.resource.attributes.add(key=key, value=any_value(value))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = scope
    ss.spans.extend(spans)
    return request


def span(**fields: Any) -> Span:
    attributes = fields.pop("attributes", {})
    defaults = {"trace_id": TRACE, "span_id": SPAN, "name": "GET /orders", "start_time_unix_nano": START,
                "end_time_unix_nano": START + 2_500_000_000}
    out = Span(**{**defaults, **fields})
    out.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attributes.items())
    return out


def translate(request: ExportTraceServiceRequest, translator: Translator | None = None
              ) -> list[model_pb2.Batch]:
    split = (translator or Translator()).translate(request)
    batches = [collector_pb2.PostSpansRequest.FromString(part.payload).batch for part in split.parts]
    assert [len(b.spans) for b in batches] == [part.items for part in split.parts]
    return batches


def only_span(request: ExportTraceServiceRequest) -> model_pb2.Span:
    (batch,) = translate(request)
    (out,) = batch.spans
    return out


def tags(kvs: Any) -> dict[str, Any]:
    """Jaeger tags as {key: (v_type name, value)}."""
    out = {}
    for kv in kvs:
        kind = model_pb2.ValueType.Name(kv.v_type)
        value = {"STRING": kv.v_str, "BOOL": kv.v_bool, "INT64": kv.v_int64, "FLOAT64": kv.v_float64,
                 "BINARY": kv.v_binary}[kind]
        assert kv.key not in out, f"duplicate tag {kv.key}"
        out[kv.key] = (kind, value)
    return out


def test_ids_name_times_and_scope() -> None:
    out = only_span(request_with(span()))
    assert (out.trace_id, out.span_id, out.operation_name) == (TRACE, SPAN, "GET /orders")
    assert (out.start_time.seconds, out.start_time.nanos) == (1_700_000_123, 456_789_012)
    assert (out.duration.seconds, out.duration.nanos) == (2, 500_000_000)
    assert list(out.references) == [] and out.flags == 0 and not out.HasField("process")
    assert tags(out.tags) == {"otel.scope.name": ("STRING", "lib"), "otel.scope.version": ("STRING", "1.2")}


def test_process_from_resource() -> None:
    (batch,) = translate(request_with(span(), resource={"service.name": "checkout", "host.name": "node-1",
                                                        "process.pid": 42}))
    assert batch.process.service_name == "checkout"
    assert tags(batch.process.tags) == {"host.name": ("STRING", "node-1"), "process.pid": ("INT64", 42)}
    (batch,) = translate(request_with(span(), resource={"host.name": "node-1"}))
    assert batch.process.service_name == "unknown_service"


def test_attribute_types() -> None:
    out = only_span(request_with(span(attributes={
        "s": "text", "b": True, "i": -7, "d": 2.5, "raw": b"\x00\xff", "list": [1, "a", True],
        "map": {"k": "v", "n": 1.5}, "long": "x" * 300, "é": "ünïcode"}), scope=("", "")))
    out_tags = tags(out.tags)
    assert out_tags == {
        "s": ("STRING", "text"), "b": ("BOOL", True), "i": ("INT64", -7), "d": ("FLOAT64", 2.5),
        "raw": ("BINARY", b"\x00\xff"), "list": ("STRING", '[1,"a",true]'), "map": ("STRING", '{"k":"v","n":1.5}'),
        "long": ("STRING", "x" * 300), "é": ("STRING", "ünïcode")}
    empty = Span(trace_id=TRACE, span_id=SPAN)
    empty.attributes.add(key="nothing")
    assert tags(only_span(request_with(empty, scope=("", ""))).tags) == {"nothing": ("STRING", "")}


def test_span_kind_tags() -> None:
    kinds = {kind: tags(only_span(request_with(span(kind=kind), scope=("", ""))).tags) for kind in range(6)}
    assert kinds == {0: {}, 1: {"span.kind": ("STRING", "internal")}, 2: {"span.kind": ("STRING", "server")},
                     3: {"span.kind": ("STRING", "client")}, 4: {"span.kind": ("STRING", "producer")},
                     5: {"span.kind": ("STRING", "consumer")}}


def test_status_tags() -> None:
    def status_tags(code: int, message: str = "") -> dict[str, Any]:
        s = span()
        s.status.code, s.status.message = code, message  # type: ignore[assignment]
        return tags(only_span(request_with(s, scope=("", ""))).tags)

    assert status_tags(0) == {}
    assert status_tags(1) == {"otel.status_code": ("STRING", "OK")}
    assert status_tags(2, "card declined") == {"otel.status_code": ("STRING", "ERROR"), "error": ("BOOL", True),
                                               "otel.status_description": ("STRING", "card declined")}


def test_trace_state_dropped_counts_and_sampled_flag() -> None:
    out = only_span(request_with(span(trace_state="vendor=abc", dropped_attributes_count=3, dropped_events_count=2,
                                      dropped_links_count=1, flags=0x301), scope=("", "")))
    assert tags(out.tags) == {"w3c.tracestate": ("STRING", "vendor=abc"),
                              "otel.dropped_attributes_count": ("INT64", 3),
                              "otel.dropped_events_count": ("INT64", 2), "otel.dropped_links_count": ("INT64", 1)}
    assert out.flags == 1
    assert only_span(request_with(span(flags=0x300))).flags == 0


def test_parent_is_the_first_child_of_reference_and_links_follow() -> None:
    s = span(parent_span_id=PARENT)
    other_trace, other_span = bytes(16 * [9]), bytes(8 * [8])
    s.links.add(trace_id=other_trace, span_id=other_span)
    child_of = s.links.add(trace_id=other_trace, span_id=bytes(8 * [7]))
    child_of.attributes.add(key="opentracing.ref_type", value=AnyValue(string_value="child_of"))
    refs = [(r.trace_id, r.span_id, model_pb2.SpanRefType.Name(r.ref_type))
            for r in only_span(request_with(s)).references]
    assert refs == [(TRACE, PARENT, "CHILD_OF"), (other_trace, other_span, "FOLLOWS_FROM"),
                    (other_trace, bytes(8 * [7]), "CHILD_OF")]


def test_a_link_to_the_parent_only_sets_the_parent_reference_type() -> None:
    s = span(parent_span_id=PARENT)
    link = s.links.add(trace_id=TRACE, span_id=PARENT)
    link.attributes.add(key="opentracing.ref_type", value=AnyValue(string_value="follows_from"))
    refs = [(r.span_id, model_pb2.SpanRefType.Name(r.ref_type)) for r in only_span(request_with(s)).references]
    assert refs == [(PARENT, "FOLLOWS_FROM")]


def test_events_become_logs() -> None:
    s = span()
    event = s.events.add(time_unix_nano=START + 5, name="retry")
    event.attributes.add(key="attempt", value=AnyValue(int_value=2))
    named = s.events.add(time_unix_nano=START + 6, name="exception")
    named.attributes.add(key="event", value=AnyValue(string_value="custom"))
    first, second = only_span(request_with(s)).logs
    assert (first.timestamp.seconds, first.timestamp.nanos) == (1_700_000_123, 456_789_017)
    assert [(f.key, f.v_str or f.v_int64) for f in first.fields] == [("event", "retry"), ("attempt", 2)]
    assert [(f.key, f.v_str) for f in second.fields] == [("event", "custom")]


def test_identical_resources_share_one_batch_and_different_ones_do_not() -> None:
    request = request_with(span(), span(span_id=PARENT))
    request.resource_spans.append(request.resource_spans[0])
    other = request.resource_spans.add()
    other.CopyFrom(request.resource_spans[0])
    other.resource.attributes[0].value.string_value = "billing"
    batches = translate(request)
    assert [(b.process.service_name, len(b.spans)) for b in batches] == [("checkout", 4), ("billing", 2)]


def test_spans_jaeger_would_refuse_are_left_out_and_counted() -> None:
    split = Translator().translate(request_with(span(), span(trace_id=b"\x01" * 8), span(span_id=b""),
                                                span(parent_span_id=b"\x01" * 4)))
    assert [part.items for part in split.parts] == [1]
    assert split.rejected == 3
    assert "Jaeger needs a trace_id of 16 bytes" in split.reason


def test_large_batches_are_split_under_the_size_limit_each_with_the_process() -> None:
    request = make_traces(1000)
    translator = Translator(max_request_bytes=64 * 1024)
    split = translator.translate(request)
    assert len(split.parts) > 1
    assert all(len(part.payload) <= 64 * 1024 for part in split.parts)
    batches = [collector_pb2.PostSpansRequest.FromString(part.payload).batch for part in split.parts]
    assert {b.process.service_name for b in batches} == {"test-service"}
    assert sum(len(b.spans) for b in batches) == 1000
    ids = [s.span_id for b in batches for s in b.spans]
    assert ids == [s.span_id for s in request.resource_spans[0].scope_spans[0].spans]


def test_translation_is_stable_across_cache_hits() -> None:
    translator = Translator()
    request = make_traces(50, attributes={"http.route": "/a", "n": 3})
    first = translator.translate(request).parts[0].payload
    assert translator.translate(request).parts[0].payload == first


values = st.one_of(
    st.text(max_size=300).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.floats(allow_nan=False).map(lambda f: AnyValue(double_value=f)),
    st.binary(max_size=300).map(lambda b: AnyValue(bytes_value=b)),
    st.lists(st.integers(-5, 5), max_size=3).map(any_value),
    st.just(AnyValue()))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), values)
def test_the_byte_level_key_value_rewrite_equals_the_message_translation(key: str, value: AnyValue) -> None:
    otlp = KeyValue(key=key, value=value)
    out = model_pb2.KeyValue.FromString(wire.jaeger_key_value(otlp.SerializeToString()))
    assert out.key == key
    kind = value.WhichOneof("value")
    expected = {None: ("STRING", ""), "string_value": ("STRING", value.string_value),
                "int_value": ("INT64", value.int_value), "bool_value": ("BOOL", value.bool_value),
                "double_value": ("FLOAT64", value.double_value), "bytes_value": ("BINARY", value.bytes_value),
                "array_value": ("STRING", json.dumps(wire.any_value_to_python(value), separators=(",", ":")))}[kind]
    assert tags([out]) == {key: expected}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

    assert wire.varint(value) == _VarintBytes(value)
