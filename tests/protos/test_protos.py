"""The project's own protos: generated modules in sync with protos/*.proto, and the field tables they follow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from gateway.protos.jaeger.api_v2 import collector_pb2, collector_pb2_grpc, model_pb2
from gateway.protos.loki import push_pb2
from gateway.protos.otelgw import item_views_pb2 as items
from gateway.protos.otelgw import otlp_views_pb2 as views
from gateway.protos.otelgw import ottl_views_pb2 as edits
from gateway.protos.prometheus import remote_pb2, types_pb2

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protos_generate", ROOT / "protos" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_modules_are_what_the_protos_generate(tmp_path: Path) -> None:
    generate = generator()
    written = generate.generate(tmp_path)
    assert written, "nothing generated"
    differences = generate.differences(tmp_path / "gateway" / "protos", ROOT / "gateway" / "protos")
    assert differences == [], "gateway/protos/ is out of date: run `python protos/generate.py`"


def test_the_check_notices_a_stale_module(tmp_path: Path) -> None:
    generate = generator()
    generate.generate(tmp_path / "a")
    generate.generate(tmp_path / "b")
    package = tmp_path / "b" / "gateway" / "protos"
    (package / "loki" / "push_pb2.py").write_text("# edited by hand\n")
    (package / "old_pb2.py").write_text("")
    assert generate.differences(tmp_path / "a" / "gateway" / "protos", package) == [
        "not generated from a .proto (stale?): old_pb2.py", "differs: loki/push_pb2.py"]


def fields(message: Descriptor) -> dict[str, tuple[int, str]]:
    """{name: (number, type)}, type as the tables write it: rep X, a message or enum name, or a scalar."""
    out = {}
    for f in message.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            kind = f.message_type.full_name
        elif f.type == FieldDescriptor.TYPE_ENUM:
            kind = f.enum_type.name
        else:
            kind = {FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BYTES: "bytes",
                    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_INT64: "int64",
                    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_UINT32: "uint32",
                    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_DOUBLE: "double",
                    FieldDescriptor.TYPE_SINT32: "sint32", FieldDescriptor.TYPE_SINT64: "sint64"}[f.type]
        out[f.name] = (f.number, f"rep {kind}" if f.is_repeated else kind)
    return out


TS, DUR = "google.protobuf.Timestamp", "google.protobuf.Duration"
JAEGER = {  # docs/protocols.md §3.1
    model_pb2.Span: {"trace_id": (1, "bytes"), "span_id": (2, "bytes"), "operation_name": (3, "string"),
                     "references": (4, "rep jaeger.api_v2.SpanRef"), "flags": (5, "uint32"),
                     "start_time": (6, TS), "duration": (7, DUR), "tags": (8, "rep jaeger.api_v2.KeyValue"),
                     "logs": (9, "rep jaeger.api_v2.Log"), "process": (10, "jaeger.api_v2.Process"),
                     "process_id": (11, "string"), "warnings": (12, "rep string")},
    model_pb2.SpanRef: {"trace_id": (1, "bytes"), "span_id": (2, "bytes"), "ref_type": (3, "SpanRefType")},
    model_pb2.Process: {"service_name": (1, "string"), "tags": (2, "rep jaeger.api_v2.KeyValue")},
    model_pb2.Log: {"timestamp": (1, TS), "fields": (2, "rep jaeger.api_v2.KeyValue")},
    model_pb2.KeyValue: {"key": (1, "string"), "v_type": (2, "ValueType"), "v_str": (3, "string"),
                         "v_bool": (4, "bool"), "v_int64": (5, "int64"), "v_float64": (6, "double"),
                         "v_binary": (7, "bytes")},
    model_pb2.Batch: {"spans": (1, "rep jaeger.api_v2.Span"), "process": (2, "jaeger.api_v2.Process")},
    model_pb2.Trace: {"spans": (1, "rep jaeger.api_v2.Span"),
                      "process_map": (2, "rep jaeger.api_v2.Trace.ProcessMapping"), "warnings": (3, "rep string")},
    collector_pb2.PostSpansRequest: {"batch": (1, "jaeger.api_v2.Batch")},
    collector_pb2.PostSpansResponse: {},
}
LOKI = {  # docs/protocols.md §2.3
    push_pb2.PushRequest: {"streams": (1, "rep logproto.StreamAdapter"), "format": (2, "string")},
    push_pb2.PushResponse: {},
    push_pb2.StreamAdapter: {"labels": (1, "string"), "entries": (2, "rep logproto.EntryAdapter"),
                             "hash": (3, "uint64")},
    push_pb2.EntryAdapter: {"timestamp": (1, TS), "line": (2, "string"),
                            "structuredMetadata": (3, "rep logproto.LabelPairAdapter"),
                            "parsed": (4, "rep logproto.LabelPairAdapter")},
    push_pb2.LabelPairAdapter: {"name": (1, "string"), "value": (2, "string")},
}
PROMETHEUS = {  # docs/protocols.md §4.1
    remote_pb2.WriteRequest: {"timeseries": (1, "rep prometheus.TimeSeries"),
                              "metadata": (3, "rep prometheus.MetricMetadata")},
    types_pb2.TimeSeries: {"labels": (1, "rep prometheus.Label"), "samples": (2, "rep prometheus.Sample"),
                           "exemplars": (3, "rep prometheus.Exemplar"), "histograms": (4, "rep prometheus.Histogram")},
    types_pb2.Label: {"name": (1, "string"), "value": (2, "string")},
    types_pb2.Sample: {"value": (1, "double"), "timestamp": (2, "int64")},
    types_pb2.Exemplar: {"labels": (1, "rep prometheus.Label"), "value": (2, "double"), "timestamp": (3, "int64")},
    types_pb2.MetricMetadata: {"type": (1, "MetricType"), "metric_family_name": (2, "string"), "help": (4, "string"),
                               "unit": (5, "string")},
    types_pb2.Histogram: {"count_int": (1, "uint64"), "count_float": (2, "double"), "sum": (3, "double"),
                          "schema": (4, "sint32"), "zero_threshold": (5, "double"), "zero_count_int": (6, "uint64"),
                          "zero_count_float": (7, "double"), "negative_spans": (8, "rep prometheus.BucketSpan"),
                          "negative_deltas": (9, "rep sint64"), "negative_counts": (10, "rep double"),
                          "positive_spans": (11, "rep prometheus.BucketSpan"), "positive_deltas": (12, "rep sint64"),
                          "positive_counts": (13, "rep double"), "reset_hint": (14, "ResetHint"),
                          "timestamp": (15, "int64")},
    types_pb2.BucketSpan: {"offset": (1, "sint32"), "length": (2, "uint32")},
}


@pytest.mark.parametrize("message", [*JAEGER, *LOKI, *PROMETHEUS], ids=lambda m: m.DESCRIPTOR.full_name)
def test_messages_follow_the_field_tables(message: Any) -> None:
    table = {**JAEGER, **LOKI, **PROMETHEUS}[message]
    assert fields(message.DESCRIPTOR) == table


def test_enums_follow_the_tables() -> None:
    assert dict(model_pb2.ValueType.items()) == {"STRING": 0, "BOOL": 1, "INT64": 2, "FLOAT64": 3, "BINARY": 4}
    assert dict(model_pb2.SpanRefType.items()) == {"CHILD_OF": 0, "FOLLOWS_FROM": 1}
    assert dict(types_pb2.MetricMetadata.MetricType.items()) == {
        "UNKNOWN": 0, "COUNTER": 1, "GAUGE": 2, "HISTOGRAM": 3, "GAUGEHISTOGRAM": 4, "SUMMARY": 5, "INFO": 6,
        "STATESET": 7}
    assert dict(types_pb2.Histogram.ResetHint.items()) == {"UNKNOWN": 0, "YES": 1, "NO": 2, "GAUGE": 3}
    proto = descriptor_pb2.DescriptorProto()
    remote_pb2.WriteRequest.DESCRIPTOR.CopyToProto(proto)
    assert [(r.start, r.end) for r in proto.reserved_range] == [(2, 3)]  # 2 is reserved (Cortex)


def test_packages_and_the_collector_service_path() -> None:
    assert model_pb2.DESCRIPTOR.package == "jaeger.api_v2"
    assert push_pb2.DESCRIPTOR.package == "logproto"
    assert remote_pb2.DESCRIPTOR.package == types_pb2.DESCRIPTOR.package == "prometheus"
    method = collector_pb2.DESCRIPTOR.services_by_name["CollectorService"].methods_by_name["PostSpans"]
    assert (method.input_type, method.output_type) == (collector_pb2.PostSpansRequest.DESCRIPTOR,
                                                       collector_pb2.PostSpansResponse.DESCRIPTOR)
    assert hasattr(collector_pb2_grpc, "CollectorServiceStub")
    assert hasattr(collector_pb2_grpc, "add_CollectorServiceServicer_to_server")


# A view field may swap a message or string for bytes, or an enum for int32: the wire type stays the same.
_WIRE = {FieldDescriptor.TYPE_MESSAGE: "len", FieldDescriptor.TYPE_BYTES: "len", FieldDescriptor.TYPE_STRING: "len",
         FieldDescriptor.TYPE_ENUM: "varint", FieldDescriptor.TYPE_INT32: "varint",
         FieldDescriptor.TYPE_UINT32: "varint", FieldDescriptor.TYPE_FIXED32: "i32",
         FieldDescriptor.TYPE_FIXED64: "i64"}
VIEWS = [
    (views.TracesView, trace_service_pb2.ExportTraceServiceRequest),
    (views.ResourceSpansView, trace_pb2.ResourceSpans), (views.ScopeSpansView, trace_pb2.ScopeSpans),
    (views.SpanView, trace_pb2.Span), (views.EventView, trace_pb2.Span.Event), (views.LinkView, trace_pb2.Span.Link),
    (views.StatusView, trace_pb2.Status),
    (views.ResourceView, resource_pb2.Resource), (views.ScopeView, common_pb2.InstrumentationScope),
    (views.LogsView, logs_service_pb2.ExportLogsServiceRequest), (views.ResourceLogsView, logs_pb2.ResourceLogs),
    (views.ScopeLogsView, logs_pb2.ScopeLogs), (views.LogRecordView, logs_pb2.LogRecord),
    (items.TracesItems, trace_service_pb2.ExportTraceServiceRequest),
    (items.ResourceSpansItems, trace_pb2.ResourceSpans), (items.ScopeSpansItems, trace_pb2.ScopeSpans),
    (items.LogsItems, logs_service_pb2.ExportLogsServiceRequest), (items.ResourceLogsItems, logs_pb2.ResourceLogs),
    (items.ScopeLogsItems, logs_pb2.ScopeLogs),
    (items.MetricsItems, metrics_service_pb2.ExportMetricsServiceRequest),
    (items.ResourceMetricsItems, metrics_pb2.ResourceMetrics), (items.ScopeMetricsItems, metrics_pb2.ScopeMetrics),
    (items.MetricItems, metrics_pb2.Metric), (items.DataPoints, metrics_pb2.Gauge), (items.DataPoints, metrics_pb2.Sum),
    (items.DataPoints, metrics_pb2.Histogram), (items.DataPoints, metrics_pb2.ExponentialHistogram),
    (items.DataPoints, metrics_pb2.Summary),
]
#: Views that are serialized again (gateway/ottl/wire.py): they declare every OTLP field, so they write the fields
#: in OTLP's order and keep nothing as an unknown field that OTLP knows.
EDITS = [
    (edits.TracesEdit, trace_service_pb2.ExportTraceServiceRequest),
    (edits.ResourceSpansEdit, trace_pb2.ResourceSpans), (edits.ResourceEdit, resource_pb2.Resource),
    (edits.ScopeSpansEdit, trace_pb2.ScopeSpans), (edits.ScopeEdit, common_pb2.InstrumentationScope),
    (edits.SpanEdit, trace_pb2.Span), (edits.StatusEdit, trace_pb2.Status),
]
VIEWS += EDITS


@pytest.mark.parametrize(("view", "otlp"), EDITS, ids=lambda m: m.DESCRIPTOR.name)
def test_edit_views_declare_every_otlp_field(view: Any, otlp: Any) -> None:
    assert sorted(f.number for f in view.DESCRIPTOR.fields) == sorted(f.number for f in otlp.DESCRIPTOR.fields)


def test_an_edit_view_writes_what_otlp_writes() -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url="r")
    rs.resource.attributes.add(key="service.name").value.string_value = "a"
    ss = rs.scope_spans.add(schema_url="s")
    ss.scope.name = "lib"
    span = ss.spans.add(trace_id=b"t" * 16, span_id=b"s" * 8, parent_span_id=b"p" * 8, trace_state="x=y", name="n",
                        kind=2, start_time_unix_nano=5, end_time_unix_nano=6, flags=257, dropped_links_count=1)
    span.attributes.add(key="k").value.int_value = 1
    span.events.add(name="e")
    span.links.add(trace_id=b"t" * 16)
    span.status.code = 2
    data = request.SerializeToString()
    assert edits.TracesEdit.FromString(data).SerializeToString() == data


@pytest.mark.parametrize(("view", "otlp"), VIEWS, ids=lambda m: m.DESCRIPTOR.name)
def test_views_are_wire_compatible_with_otlp(view: Any, otlp: Any) -> None:
    theirs = {f.number: f for f in otlp.DESCRIPTOR.fields}
    for field in view.DESCRIPTOR.fields:
        other = theirs.get(field.number)
        assert other is not None, f"{view.DESCRIPTOR.name}.{field.name}: OTLP has no field {field.number}"
        assert (field.name, field.is_repeated) == (other.name, other.is_repeated)
        assert _WIRE[field.type] == _WIRE[other.type], field.name


def test_a_view_reads_what_otlp_wrote() -> None:
    span = trace_pb2.Span(trace_id=b"t" * 16, span_id=b"s" * 8, name="n", kind=2, start_time_unix_nano=5, flags=257)
    span.attributes.add(key="k").value.string_value = "v"
    view = views.SpanView.FromString(span.SerializeToString())
    assert (view.trace_id, view.name, view.kind, view.start_time_unix_nano, view.flags) == (b"t" * 16, b"n", 2, 5, 257)
    assert list(view.attributes) == [span.attributes[0].SerializeToString()]
