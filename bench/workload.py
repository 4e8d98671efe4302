"""Realistic trace requests for benchmarks: 500 spans per request, about 285 bytes per span on the wire.

Spans look like what an instrumented customer-service API sends: HTTP server and client spans, a DB call, a few
semantic-convention attributes, 1% errors. Built once, serialized once, replayed as bytes.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

ROUTES = ["/api/orders/{id}", "/api/tickets", "/api/customers/{id}/messages", "/api/calls/{id}/transfer", "/healthz"]
SERVICES = ["checkout", "ticketing", "crm-api", "voice-router"]


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def make_request(rng: random.Random, spans: int = 500, spans_per_trace: int = 10,
                 error_ratio: float = 0.01) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    service = rng.choice(SERVICES)
    rs.resource.attributes.extend([_kv("service.name", service), _kv("service.version", "1.4.2"),
                                   _kv("host.name", f"node-{rng.randrange(40)}"),
                                   _kv("telemetry.sdk.language", "python")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.fastapi"
    ss.scope.version = "0.48b0"
    start = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    trace_id = root_id = b""
    for i in range(spans):
        span = ss.spans.add()
        if i % spans_per_trace == 0:
            trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
            span.span_id = root_id
            span.kind = 2
        else:
            span.span_id = rng.randbytes(8)
            span.parent_span_id = root_id
            span.kind = 3
        span.trace_id = trace_id
        route = rng.choice(ROUTES)
        span.name = f"GET {route}" if span.kind == 2 else "SELECT orders"
        span.start_time_unix_nano = start + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(200_000, 90_000_000)
        status = 500 if rng.random() < error_ratio else 200
        span.attributes.extend([_kv("http.request.method", "GET"), _kv("http.route", route),
                                _kv("http.response.status_code", status),
                                _kv("url.scheme", "https"), _kv("server.address", "api.internal"),
                                _kv("network.peer.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}")])
        if status >= 500:
            span.status.code = 2
    return request


def make_payloads(count: int = 64, spans: int = 500, seed: int = 7) -> list[bytes]:
    """``count`` distinct serialized requests of ``spans`` spans each."""
    rng = random.Random(seed)
    return [make_request(rng, spans).SerializeToString() for _ in range(count)]


if __name__ == "__main__":
    payloads = make_payloads(8)
    print(f"{len(payloads[0]) / 500:.0f} bytes per span on the wire")
