"""Items whose trace or span ids break the OTLP rules are refused one by one on every transport: the valid items
of the same request go on, and the sender learns about the others through ``partial_success``."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from gateway import otlpjson
from gateway.component import Signal, count_items
from gateway.testing import make_logs, make_traces

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRANSPORTS = ("grpc", "http-protobuf", "http-json")

#: span index → (field, bad value, reason label, what the message says)
BAD_SPANS = {
    1: ("trace_id", b"\x01\x02\x03", "invalid_trace_id", "trace_id must be 16 bytes, got 3"),
    3: ("trace_id", bytes(16), "invalid_trace_id", "trace_id must not be all zeros"),
    4: ("span_id", b"\x01\x02\x03\x04", "invalid_span_id", "span_id must be 8 bytes, got 4"),
    6: ("span_id", bytes(8), "invalid_span_id", "span_id must not be all zeros"),
    7: ("parent_span_id", b"\x01" * 5, "invalid_parent_span_id", "parent_span_id must be empty or 8 bytes, got 5"),
    8: ("span_id", b"", "invalid_span_id", "span_id must be 8 bytes, got 0"),
}


async def send(rx, transport: str, signal: Signal, batch, response_type):  # type: ignore[no-untyped-def]
    """Send ``batch``; returns the decoded Export*ServiceResponse (success is required)."""
    path = {Signal.TRACES: "/v1/traces", Signal.LOGS: "/v1/logs"}[signal]
    if transport == "grpc":
        service = {Signal.TRACES: "trace.v1.TraceService", Signal.LOGS: "logs.v1.LogsService"}[signal]
        call = rx.channel.unary_unary(f"/opentelemetry.proto.collector.{service}/Export")
        return response_type.FromString(await call(batch.SerializeToString(), timeout=10))
    if transport == "http-protobuf":
        reply = await rx.http(path, batch.SerializeToString(), PROTOBUF)
        assert reply.status == 200, reply.body
        return response_type.FromString(reply.body)
    reply = await rx.http(path, otlpjson.encode(batch), JSON)
    assert reply.status == 200, reply.body
    return otlpjson.decode(reply.body, response_type)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_spans_with_bad_ids_are_refused_and_the_rest_of_the_request_goes_on(rx, transport):
    batch = make_traces(10)
    spans = batch.resource_spans[0].scope_spans[0].spans
    for index, (field, value, _, _) in BAD_SPANS.items():
        setattr(spans[index], field, value)
    good_names = {span.span_id for i, span in enumerate(spans) if i not in BAD_SPANS}
    response = await send(rx, transport, Signal.TRACES, batch, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == len(BAD_SPANS)
    assert response.partial_success.error_message == (
        f"6 spans rejected: {BAD_SPANS[1][3]}; 5 more with invalid ids")
    [received] = rx.received(Signal.TRACES)
    assert {span.span_id for span in received.resource_spans[0].scope_spans[0].spans} == good_names
    wire = transport.partition("-")[0]
    assert rx.accepted(wire) == 4
    assert rx.refused(wire) == 6
    for reason in ("invalid_trace_id", "invalid_span_id", "invalid_parent_span_id"):
        expected = sum(1 for _, _, r, _ in BAD_SPANS.values() if r == reason)
        assert rx.sample("otelgw_receiver_rejected_items_total", transport=wire, reason=reason) == expected


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("field", "value", "message"), [
    ("trace_id", b"\x01" * 15, "trace_id must be 16 bytes, got 15"),
    ("span_id", b"\x01" * 9, "span_id must be 8 bytes, got 9"),
    ("parent_span_id", b"\x01", "parent_span_id must be empty or 8 bytes, got 1")])
async def test_each_bad_id_is_named_to_the_sender(rx, transport, field, value, message):
    batch = make_traces(2)
    setattr(batch.resource_spans[0].scope_spans[0].spans[1], field, value)
    response = await send(rx, transport, Signal.TRACES, batch, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == f"1 span rejected: {message}"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_log_records_with_ids_of_the_wrong_size_are_refused_and_ones_without_ids_go_on(rx, transport):
    batch = make_logs(4)
    records = batch.resource_logs[0].scope_logs[0].log_records
    records[1].trace_id, records[1].span_id = b"\x01" * 16, b"\x02" * 8  # in a trace: fine
    records[2].trace_id = b"\x01" * 3
    records[3].span_id = b"\x01" * 7
    response = await send(rx, transport, Signal.LOGS, batch, ExportLogsServiceResponse)
    assert response.partial_success.rejected_log_records == 2
    assert response.partial_success.error_message == (
        "2 log records rejected: trace_id must be empty or 16 bytes, got 3; 1 more with invalid ids")
    [received] = rx.received(Signal.LOGS)
    assert count_items(Signal.LOGS, received) == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_request_of_only_bad_spans_is_answered_and_nothing_is_forwarded(rx, transport):
    batch = make_traces(3)
    for span in batch.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b"\x07" * 8
    response = await send(rx, transport, Signal.TRACES, batch, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == 3
    assert rx.received(Signal.TRACES) == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_valid_requests_have_no_partial_success(rx, transport):
    response = await send(rx, transport, Signal.TRACES, make_traces(5), ExportTraceServiceResponse)
    assert not response.HasField("partial_success")
