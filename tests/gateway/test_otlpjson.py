from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import otlpjson
from gateway.errors import PermanentError
from gateway.testing import make_logs, make_metrics, make_traces


@pytest.mark.parametrize(("build", "kind"), [(make_traces, ExportTraceServiceRequest),
                                             (make_metrics, ExportMetricsServiceRequest),
                                             (make_logs, ExportLogsServiceRequest)])
def test_round_trip(build, kind):
    message = build()
    assert otlpjson.decode(otlpjson.encode(message), kind) == message


def test_ids_are_hex_and_bytes_values_base64_enums_integers():
    batch = make_traces(spans=2, attributes={"blob": b"\xff\x00"})
    batch.resource_spans[0].scope_spans[0].spans[1].links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    document = json.loads(otlpjson.encode(batch))
    root, child = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert root["traceId"] == batch.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert child["parentSpanId"] == root["spanId"] and len(root["spanId"]) == 16
    assert child["links"][0] == {"traceId": "01" * 16, "spanId": "02" * 8}
    assert root["attributes"][0]["value"] == {"bytesValue": "/wA="}
    assert root["kind"] == 2
    assert root["startTimeUnixNano"] == "1700000000000000000"  # int64 as string


def test_numbers_may_arrive_as_strings_or_numbers_and_unknown_keys_are_ignored():
    body = {"resourceSpans": [{"futureField": 1, "scopeSpans": [{"spans": [
        {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174", "name": "x",
         "startTimeUnixNano": 1700000000000000000, "endTimeUnixNano": "1700000000000000001", "kind": 3}]}]}]}
    span = otlpjson.decode(json.dumps(body), ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert (span.start_time_unix_nano, span.end_time_unix_nano, span.kind) == (
        1700000000000000000, 1700000000000000001, 3)


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "invalid JSON"),
    (b"[]", "the top level must be an object"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}', "traceId must be a hex string"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}', "invalid OTLP/JSON"),
    (b'{"resourceSpans":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
])
def test_bad_input_is_a_permanent_error_with_a_reason(body, message):
    with pytest.raises(PermanentError, match=message):
        otlpjson.decode(body, ExportTraceServiceRequest)


def test_ids_of_the_wrong_size_decode_as_they_are_for_the_receiver_to_refuse_per_span():
    body = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcdef","spanId":"abcd"}]}]}]}'
    span = otlpjson.decode(body, ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == (b"\xab\xcd\xef", b"\xab\xcd")
