"""Every place the processor covers, one test each: the e-mail detector masks ``alice@example.com`` there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import Signal
from gateway.testing import any_value, make_logs, make_metrics, make_traces

PII = "alice@example.com"
TEXT = f"contact {PII} today"
MASKED = "contact **** today"
CONFIG = {"allow_all_keys": True, "detectors": ["email"]}


def first_span(request: ExportTraceServiceRequest) -> Any:
    return request.resource_spans[0].scope_spans[0].spans[0]


def first_record(request: ExportLogsServiceRequest) -> Any:
    return request.resource_logs[0].scope_logs[0].log_records[0]


def attr(attributes: Any, key: str) -> Any:
    [value] = [kv.value for kv in attributes if kv.key == key]
    return value


def run(make_processor: Any, signal: Signal, request: Any, config: dict[str, Any] | None = None) -> Any:
    processor, _, _ = make_processor(config or CONFIG, signal)
    result = getattr(processor, f"process_{signal.value}")(request)
    assert PII.encode() not in result.SerializeToString()
    return result


# ------------------------------------------------------------------ traces

TRACE_PLACES: dict[str, tuple[Callable[[Any], None], Callable[[Any], str]]] = {
    "resource attribute": (
        lambda r: r.resource_spans[0].resource.attributes.add(key="owner").value.__setattr__("string_value", TEXT),
        lambda r: attr(r.resource_spans[0].resource.attributes, "owner").string_value),
    "scope attribute": (
        lambda r: r.resource_spans[0].scope_spans[0].scope.attributes.add(key="owner").value.__setattr__(
            "string_value", TEXT),
        lambda r: attr(r.resource_spans[0].scope_spans[0].scope.attributes, "owner").string_value),
    "span attribute": (
        lambda r: first_span(r).attributes.add(key="note").value.__setattr__("string_value", TEXT),
        lambda r: attr(first_span(r).attributes, "note").string_value),
    "span name": (lambda r: setattr(first_span(r), "name", TEXT), lambda r: first_span(r).name),
    "status message": (lambda r: setattr(first_span(r).status, "message", TEXT),
                       lambda r: first_span(r).status.message),
    "event name": (lambda r: first_span(r).events.add(name=TEXT), lambda r: first_span(r).events[0].name),
    "event attribute": (
        lambda r: first_span(r).events.add(name="msg").attributes.add(key="text").value.__setattr__(
            "string_value", TEXT),
        lambda r: attr(first_span(r).events[0].attributes, "text").string_value),
    "link attribute": (
        lambda r: first_span(r).links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8).attributes.add(
            key="from").value.__setattr__("string_value", TEXT),
        lambda r: attr(first_span(r).links[0].attributes, "from").string_value),
    "map inside an attribute": (
        lambda r: first_span(r).attributes.add(key="user").value.CopyFrom(any_value({"contact": TEXT, "n": 1})),
        lambda r: attr(attr(first_span(r).attributes, "user").kvlist_value.values, "contact").string_value),
    "array inside an attribute": (
        lambda r: first_span(r).attributes.add(key="cc").value.CopyFrom(any_value(["x", [TEXT]])),
        lambda r: attr(first_span(r).attributes, "cc").array_value.values[1].array_value.values[0].string_value),
    "bytes attribute holding text": (
        lambda r: first_span(r).attributes.add(key="raw").value.__setattr__("bytes_value", TEXT.encode()),
        lambda r: attr(first_span(r).attributes, "raw").bytes_value.decode()),
}


@pytest.mark.parametrize("place", sorted(TRACE_PLACES))
def test_traces(make_processor: Any, place: str) -> None:
    put, get = TRACE_PLACES[place]
    request = make_traces(5)
    put(request)
    result = run(make_processor, Signal.TRACES, request)
    assert get(result) == MASKED
    assert first_span(result).attributes[0].value.string_value == "/api/orders/{id}"  # neighbours untouched


# ------------------------------------------------------------------ logs

def test_log_string_body(make_processor: Any) -> None:
    result = run(make_processor, Signal.LOGS, make_logs(3, body=TEXT))
    assert {r.body.string_value for r in result.resource_logs[0].scope_logs[0].log_records} == {MASKED}


def test_log_structured_body_is_walked_recursively(make_processor: Any) -> None:
    body = {"event": "signup", "user": {"emails": ["x", TEXT], "name": "A."}, "tags": [{"t": TEXT}]}
    result = run(make_processor, Signal.LOGS, make_logs(2, body=body))
    values = first_record(result).body.kvlist_value.values
    user = attr(values, "user").kvlist_value.values
    assert attr(user, "emails").array_value.values[1].string_value == MASKED
    assert attr(user, "name").string_value == "A."
    assert attr(attr(values, "tags").array_value.values[0].kvlist_value.values, "t").string_value == MASKED


def test_log_array_body(make_processor: Any) -> None:
    result = run(make_processor, Signal.LOGS, make_logs(1, body=["ok", TEXT, 3]))
    assert [v.WhichOneof("value") for v in first_record(result).body.array_value.values] == [
        "string_value", "string_value", "int_value"]
    assert first_record(result).body.array_value.values[1].string_value == MASKED


def test_log_attributes_and_event_name(make_processor: Any) -> None:
    request = make_logs(2, attributes={"reply_to": TEXT})
    first_record(request).event_name = TEXT
    result = run(make_processor, Signal.LOGS, request)
    assert attr(first_record(result).attributes, "reply_to").string_value == MASKED
    assert first_record(result).event_name == MASKED


def test_log_resource_and_scope_attributes(make_processor: Any) -> None:
    request = make_logs(1)
    request.resource_logs[0].resource.attributes.add(key="owner").value.string_value = TEXT
    request.resource_logs[0].scope_logs[0].scope.attributes.add(key="owner").value.string_value = TEXT
    result = run(make_processor, Signal.LOGS, request)
    assert attr(result.resource_logs[0].resource.attributes, "owner").string_value == MASKED
    assert attr(result.resource_logs[0].scope_logs[0].scope.attributes, "owner").string_value == MASKED


# ------------------------------------------------------------------ metrics

def _metric(request: ExportMetricsServiceRequest, kind: str) -> Any:
    metric = request.resource_metrics[0].scope_metrics[0].metrics.add(name=f"m.{kind}")
    points = getattr(metric, kind).data_points
    point = points.add(time_unix_nano=1)
    point.attributes.add(key="customer").value.string_value = TEXT
    return point


@pytest.mark.parametrize("kind", ["gauge", "sum", "histogram", "exponential_histogram", "summary"])
def test_metric_data_point_attributes(make_processor: Any, kind: str) -> None:
    request = make_metrics(3, attributes={"queue": "billing"})
    _metric(request, kind)
    result = run(make_processor, Signal.METRICS, request)
    metric = result.resource_metrics[0].scope_metrics[0].metrics[1]
    point = getattr(metric, kind).data_points[0]
    assert attr(point.attributes, "customer").string_value == MASKED
    assert attr(result.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].attributes,
                "queue").string_value == "billing"


def test_metric_exemplars_metadata_resource_and_scope(make_processor: Any) -> None:
    request = make_metrics(1)
    point = _metric(request, "histogram")
    point.exemplars.add(span_id=b"\x01" * 8).filtered_attributes.add(key="user").value.string_value = TEXT
    metric = request.resource_metrics[0].scope_metrics[0].metrics[1]
    metric.metadata.add(key="owner").value.string_value = TEXT
    request.resource_metrics[0].resource.attributes.add(key="owner").value.string_value = TEXT
    request.resource_metrics[0].scope_metrics[0].scope.attributes.add(key="owner").value.string_value = TEXT
    result = run(make_processor, Signal.METRICS, request)
    metric = result.resource_metrics[0].scope_metrics[0].metrics[1]
    assert attr(metric.histogram.data_points[0].exemplars[0].filtered_attributes, "user").string_value == MASKED
    assert attr(metric.metadata, "owner").string_value == MASKED
    assert attr(result.resource_metrics[0].resource.attributes, "owner").string_value == MASKED
    assert attr(result.resource_metrics[0].scope_metrics[0].scope.attributes, "owner").string_value == MASKED


def _unknown_field(text: str) -> bytes:
    """Field 99 (not in this gateway's schema, as from a newer SDK) holding ``text``: the parser keeps it."""
    payload = text.encode()
    key = 99 << 3 | 2  # a two-byte varint
    return bytes([key & 0x7F | 0x80, key >> 7, len(payload)]) + payload


@pytest.mark.parametrize("where", ["span", "attribute", "resource", "request"])
def test_text_in_fields_this_schema_does_not_know_does_not_leave(make_processor: Any, where: str) -> None:
    request = make_traces(spans=3)
    span = request.resource_spans[0].scope_spans[0].spans[1]
    target = {"span": span, "attribute": span.attributes[0], "resource": request.resource_spans[0].resource,
              "request": request}[where]
    target.MergeFromString(_unknown_field(TEXT))
    assert PII.encode() in request.SerializeToString()
    run(make_processor, Signal.TRACES, request)  # asserts the address is gone from the bytes


def test_text_in_unknown_fields_of_a_data_point_does_not_leave(make_processor: Any) -> None:
    request = make_metrics()
    metric = request.resource_metrics[0].scope_metrics[0].metrics[0]
    point = getattr(metric, metric.WhichOneof("data")).data_points[0]
    point.MergeFromString(_unknown_field(TEXT))
    assert PII.encode() in request.SerializeToString()
    run(make_processor, Signal.METRICS, request)


def test_a_value_with_more_candidates_than_the_scan_reports_is_still_redacted(make_processor: Any) -> None:
    """Thousands of card numbers in one value overflow the scan's hit limit: every item is then walked whole."""
    cards = "4111 1111 1111 1111, " * 20_000
    request = make_traces(spans=3)
    request.resource_spans[0].scope_spans[0].spans[1].attributes.add(key="dump", value={"string_value": cards})
    request.resource_spans[0].scope_spans[0].spans[2].name = f"mail {PII}"
    processor, _, _ = make_processor({"allow_all_keys": True, "detectors": ["email", "credit_card"]})
    result = processor.process_traces(request)
    data = result.SerializeToString()
    assert b"4111 1111" not in data and PII.encode() not in data
    assert result.resource_spans[0].scope_spans[0].spans[2].name == "mail ****"
