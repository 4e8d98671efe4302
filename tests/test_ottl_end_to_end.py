"""End to end: the OpenTelemetry SDK → a real gateway (otlp → attributes → transform → filter → otlp_grpc) → a
real OTLP sink; and a statement failing with error_mode: propagate refuses the request so the sender retries."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from gateway._host.service import Service
from gateway.component import Kind
from gateway.testing.otlp_sink import OtlpSink


def attributes(span: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for data at the sink")
        await asyncio.sleep(0.02)


def emit(endpoint: str) -> None:
    """Runs in a thread: the SDK's exporter blocks."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    tracer = provider.get_tracer("e2e")
    server = {"http.url": "https://shop/orders/42?token=s3cret", "http.request.method": "GET",
              "user.email": "ann@example.com", "http.response.status_code": 503}
    with tracer.start_as_current_span("GET /orders/42", kind=SpanKind.SERVER, attributes=server), \
            tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes={"db.statement": "x"}):
        pass
    with tracer.start_as_current_span("GET /healthz", kind=SpanKind.SERVER, attributes={"http.route": "/healthz"}):
        pass
    provider.shutdown()


@pytest.fixture
async def sink() -> Any:
    server = OtlpSink()
    await server.start()
    yield server
    await server.stop()


async def test_sdk_spans_through_attributes_transform_and_filter(tmp_path: Path, sink: OtlpSink) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          attributes:
            actions:
              - {{key: user.email, action: hash}}
              - {{key: db.statement, action: delete}}
          transform:
            error_mode: ignore
            trace_statements:
              - replace_pattern(span.attributes["http.url"], "token=[^&]+", "token=***")
                  where span.kind == SPAN_KIND_SERVER
              - set(span.attributes["http.method"], span.attributes["http.request.method"])
              - set(span.status.code, STATUS_CODE_ERROR) where span.attributes["http.response.status_code"] >= 500
              - 'set(span.name, Concat([resource.attributes["service.name"], span.name], ": "))'
          filter:
            error_mode: ignore
            traces:
              span: ['attributes["http.route"] == "/healthz"']
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [attributes, transform, filter], exporters: [otlp_grpc]}}
    """))
    service = Service.from_files([str(config)])
    await service.start()
    try:
        address = service.graph.find(Kind.RECEIVER, "otlp").grpc_address
        await asyncio.to_thread(emit, address)
        await wait_until(lambda: len(sink.spans()) >= 2)
        await asyncio.sleep(0.2)  # nothing more may arrive: the health check was dropped
        by_name = {span.name: span for span in sink.spans()}
        assert sorted(by_name) == ["checkout: GET /orders/42", "checkout: SELECT orders"]
        server = by_name["checkout: GET /orders/42"]
        assert attributes(server)["http.url"] == "https://shop/orders/42?token=***"
        assert attributes(server)["http.method"] == "GET"
        assert len(attributes(server)["user.email"]) == 64
        assert server.status.code == 2
        assert "db.statement" not in attributes(by_name["checkout: SELECT orders"])
    finally:
        assert await service.shutdown() == []


async def test_propagate_answers_503_and_the_sender_keeps_its_data(tmp_path: Path, sink: OtlpSink) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          transform:
            error_mode: propagate
            trace_statements:
              - set(span.attributes["parsed"], ParseJSON(span.attributes["payload"]))
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [transform], exporters: [otlp_grpc]}}
    """))
    service = Service.from_files([str(config)])
    await service.start()
    body = ('{"resourceSpans":[{"scopeSpans":[{"spans":['
            '{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"good",'
            '"attributes":[{"key":"payload","value":{"stringValue":"{}"}}]},'
            '{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"bad",'
            '"attributes":[{"key":"payload","value":{"stringValue":"nope"}}]}]}]}]}')
    try:
        address = service.graph.find(Kind.RECEIVER, "otlp").http_address
        async with aiohttp.ClientSession() as session, session.post(f"http://{address}/v1/traces", data=body,
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 503
            text = await response.text()
        assert "ParseJSON" in text and "span_id=eee19b7ec3c1b175" in text
        await asyncio.sleep(0.2)
        assert sink.spans() == []  # refused whole: nothing half-processed went on
    finally:
        assert await service.shutdown() == []



@pytest.mark.parametrize("processors", ["[transform]", "[batch, transform]"])
async def test_span_statements_on_the_received_bytes(tmp_path: Path, sink: OtlpSink, processors: str) -> None:
    """transform right behind the receiver (or behind batch) edits the received bytes, and sends them on as they are
    (gateway/ottl/wire.py): what arrives is what the statements say."""
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          batch: {{timeout: 50ms}}
          transform:
            error_mode: ignore
            trace_statements:
              - delete_key(span.attributes, "user.email")
              - replace_pattern(span.attributes["http.url"], "token=[^&]+", "token=***")
                  where span.kind == SPAN_KIND_SERVER
              - set(span.attributes["http.method"], span.attributes["http.request.method"])
              - truncate_all(span.attributes, 8)
              - set(span.attributes["env"], resource.attributes["service.name"])
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: {processors}, exporters: [otlp_grpc]}}
    """))
    service = Service.from_files([str(config)])
    await service.start()
    try:
        plan = service.graph.find(Kind.PROCESSOR, "transform").wire
        runs: list[bytes] = []
        run = plan.run
        plan.run = lambda data: runs.append(data) or run(data)  # counts the batches that took the bytes path
        address = service.graph.find(Kind.RECEIVER, "otlp").grpc_address
        await asyncio.to_thread(emit, address)
        await wait_until(lambda: len(sink.spans()) >= 3)
        by_name = {span.name: span for span in sink.spans()}
        assert attributes(by_name["GET /orders/42"]) == {
            "http.url": "https://", "http.request.method": "GET", "http.response.status_code": 503,
            "http.method": "GET", "env": "checkout"}
        assert attributes(by_name["SELECT orders"]) == {"db.statement": "x", "env": "checkout"}
        assert attributes(by_name["GET /healthz"]) == {"http.route": "/healthz", "env": "checkout"}
        assert runs
    finally:
        assert await service.shutdown() == []
