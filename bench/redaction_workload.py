"""Customer-service traffic for the redaction benchmark: spans and log records, a given share carrying PII.

Clean items look like what a ticketing / call-centre API sends: routes, ticket and order ids, timestamps as
strings, user agents, session ids. An item "with PII" adds a customer e-mail, phone number, a chat message that
quotes a card number, or a bearer token, the way leaky instrumentation does. Built once, serialized once,
replayed as bytes.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

ROUTES = ["/api/tickets/{id}", "/api/tickets/{id}/messages", "/api/customers/{id}", "/api/calls/{id}/transfer",
          "/api/orders/{id}/refund"]
SERVICES = ["ticketing", "crm-api", "voice-router", "checkout"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0", "okhttp/4.12.0", "python-requests/2.32.3"]


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def pii_attributes(rng: random.Random) -> list[KeyValue]:
    """One leaky attribute set, as a developer might add it while debugging."""
    n = rng.randrange(10**7)
    choice = rng.randrange(4)
    if choice == 0:
        return [_kv("customer.email", f"customer{n}@example.com")]
    if choice == 1:
        return [_kv("customer.phone", f"+1 415 555 {n % 10000:04d}")]
    if choice == 2:
        return [_kv("chat.message", f"my card is 4111 1111 1111 1111, ticket {n}, call +44 20 7946 {n % 10000:04d}")]
    return [_kv("http.request.header.authorization", f"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{n}In0.c2ln")]


def make_trace_request(rng: random.Random, spans: int = 500, pii_ratio: float = 0.01) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", rng.choice(SERVICES)), _kv("service.version", "2.8.1"),
                                   _kv("host.name", f"node-{rng.randrange(40)}")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.fastapi"
    start = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    trace_id = root_id = b""
    for i in range(spans):
        span = ss.spans.add()
        if i % 10 == 0:
            trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
            span.span_id, span.kind = root_id, 2
        else:
            span.span_id, span.parent_span_id, span.kind = rng.randbytes(8), root_id, 3
        span.trace_id = trace_id
        route = rng.choice(ROUTES)
        span.name = f"GET {route}" if span.kind == 2 else "SELECT tickets"
        span.start_time_unix_nano = start + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(200_000, 90_000_000)
        span.attributes.extend([
            _kv("http.request.method", "GET"), _kv("http.route", route), _kv("http.response.status_code", 200),
            _kv("user_agent.original", rng.choice(AGENTS)), _kv("ticket.id", f"TCK-{rng.randrange(10**6):06d}"),
            _kv("order.id", str(rng.randrange(10**11, 10**12))), _kv("session.id", rng.randbytes(8).hex()),
            _kv("queue.entered_at", "2024-06-17T10:22:33.123Z")])
        if rng.random() < pii_ratio:
            span.attributes.extend(pii_attributes(rng))
    return request


def make_log_request(rng: random.Random, records: int = 500, pii_ratio: float = 0.01) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend([_kv("service.name", rng.choice(SERVICES))])
    sl = rl.scope_logs.add()
    sl.scope.name = "ticketing.audit"
    for i in range(records):
        record = sl.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + i
        record.severity_number, record.severity_text = 9, "INFO"  # type: ignore[assignment]
        ticket = rng.randrange(10**6)
        if rng.random() < pii_ratio:
            record.body.string_value = (f"ticket TCK-{ticket:06d}: customer wrote from jane.doe{ticket}@example.org, "
                                        f"call back on +33 6 12 34 {ticket % 100:02d} 78")
        else:
            record.body.string_value = (f"ticket TCK-{ticket:06d} moved to queue billing after {rng.randrange(900)} s "
                                        f"by agent {rng.randrange(300)}")
        record.attributes.extend([_kv("ticket.id", f"TCK-{ticket:06d}"), _kv("queue", "billing"),
                                  _kv("event.at", "2024-06-17T10:22:33.123Z")])
    return request


def trace_payloads(count: int = 32, spans: int = 500, pii_ratio: float = 0.01, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    return [make_trace_request(rng, spans, pii_ratio).SerializeToString() for _ in range(count)]


def log_payloads(count: int = 32, records: int = 500, pii_ratio: float = 0.01, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    return [make_log_request(rng, records, pii_ratio).SerializeToString() for _ in range(count)]
