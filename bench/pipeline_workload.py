"""The realistic pipeline's traffic: traces of 5 to 20 spans, about 10 attributes (~430 B of them) per span.

Spans look like a customer-service API's: an HTTP server span per trace with HTTP, user-agent, ticket and session
attributes, and client, database and queue spans under it; 1% of spans fail, 1% carry personal data (an e-mail,
a phone number, a chat message quoting a card, a bearer token) for the redaction processor to find. Built once,
serialized once; ``UniqueTraces`` (``bench.tail_sampling_load``) gives every replayed request new trace ids.

    python -m bench.pipeline_workload --target 127.0.0.1:4317 --requests 2000 --concurrency 16
Prints one JSON line: requests and items sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.loadgen import replay
from bench.redaction_workload import AGENTS, ROUTES, SERVICES, _kv, pii_attributes
from bench.tail_sampling_load import UniqueTraces

SPANS_PER_REQUEST = 500
CHILDREN = [("SELECT tickets", 3, "db"), ("POST /v1/classify", 3, "http"), ("publish ticket.updated", 4, "queue"),
            ("GET /api/customers/{id}", 3, "http")]


def make_request(rng: random.Random, spans: int = SPANS_PER_REQUEST, error_ratio: float = 0.01,
                 pii_ratio: float = 0.01) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    service = rng.choice(SERVICES)
    rs.resource.attributes.extend([_kv("service.name", service), _kv("service.version", "2.8.1"),
                                   _kv("deployment.environment", "production"),
                                   _kv("host.name", f"node-{rng.randrange(40)}"),
                                   _kv("k8s.pod.name", f"{service}-7d9f8c6b5-{rng.randbytes(3).hex()}")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.fastapi"
    ss.scope.version = "0.48b0"
    start = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    left = 0
    trace_id = root_id = b""
    for i in range(spans):
        span = ss.spans.add()
        if left == 0:  # a new trace of 5 to 20 spans
            left = rng.randrange(5, 21)
            trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
            route = rng.choice(ROUTES)
            span.span_id, span.kind, span.name = root_id, 2, f"GET {route}"
            span.attributes.extend([
                _kv("http.request.method", "GET"), _kv("http.route", route),
                _kv("http.response.status_code", 200), _kv("url.scheme", "https"),
                _kv("server.address", "api.support.internal"), _kv("user_agent.original", rng.choice(AGENTS)),
                _kv("client.address", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"),
                _kv("ticket.id", f"TCK-{rng.randrange(10**6):06d}"),
                _kv("session.id", rng.randbytes(16).hex()),
                _kv("code.function", "support.ticketing.handlers.get_ticket"),
                _kv("url.full", f"https://api.support.internal{route}?expand=customer,history&lang=en")])
        else:
            name, kind, system = rng.choice(CHILDREN)
            span.span_id, span.parent_span_id, span.kind, span.name = rng.randbytes(8), root_id, kind, name
            span.attributes.extend([
                _kv("peer.service", system), _kv("server.address", f"{system}.support.internal"),
                _kv("server.port", 5432 if system == "db" else 443), _kv("network.transport", "tcp"),
                _kv("db.system" if system == "db" else "messaging.system", "postgresql" if system == "db" else "kafka"),
                _kv("db.statement" if system == "db" else "messaging.destination.name",
                    "SELECT id, status, priority, assignee FROM tickets WHERE id = $1" if system == "db"
                    else "ticket.updated"),
                _kv("ticket.id", f"TCK-{rng.randrange(10**6):06d}"),
                _kv("order.id", str(rng.randrange(10**11, 10**12))),
                _kv("session.id", rng.randbytes(16).hex()),
                _kv("code.filepath", f"/app/src/support/{system}/client.py"),
                _kv("url.full", f"https://{system}.support.internal/v2/tickets/{rng.randrange(10**6)}?expand=history")])
        left -= 1
        span.trace_id = trace_id
        span.start_time_unix_nano = start + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(200_000, 90_000_000)
        if rng.random() < error_ratio:
            span.status.code = 2
        if rng.random() < pii_ratio:
            span.attributes.extend(pii_attributes(rng))
    return request


def make_payloads(count: int = 64, spans: int = SPANS_PER_REQUEST, seed: int = 23) -> list[bytes]:
    rng = random.Random(seed)
    return [make_request(rng, spans).SerializeToString() for _ in range(count)]


def attribute_bytes_per_span(payloads: list[bytes]) -> float:
    total = spans = 0
    for payload in payloads:
        for rs in ExportTraceServiceRequest.FromString(payload).resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    spans += 1
                    total += sum(kv.ByteSize() + 2 for kv in span.attributes)
    return total / spans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    traces = UniqueTraces(SPANS_PER_REQUEST, payloads=make_payloads())
    result = asyncio.run(replay(args.target, traces, args.requests, args.concurrency, SPANS_PER_REQUEST))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
