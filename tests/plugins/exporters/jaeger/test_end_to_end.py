"""Real OpenTelemetry SDK → gateway (OTLP/gRPC receiver → batch → jaeger) → PostSpans server on our protos.

Every span the SDK finished is compared, field by field, with what the Jaeger collector stand-in decoded, using
the Jaeger mapping rules (plugins/exporters/jaeger/translate.py) as the expectation.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from gateway._host.service import Service
from gateway.component import Kind
from gateway.protos.jaeger.api_v2 import model_pb2

KINDS = {SpanKind.INTERNAL: "internal", SpanKind.SERVER: "server", SpanKind.CLIENT: "client",
         SpanKind.PRODUCER: "producer", SpanKind.CONSUMER: "consumer"}
REMOTE_PARENT = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331,
                            is_remote=True, trace_flags=TraceFlags(1),
                            trace_state=TraceState([("vendor", "abc"), ("other", "x")]))


def emit(grpc_address: str, service: str) -> tuple[list[Any], Resource]:
    """Runs in a thread (the SDK exporter blocks); returns the finished spans and their resource."""
    resource = Resource.create({"service.name": service, "deployment.environment": "test", "host.cores": 8})
    provider = TracerProvider(resource=resource, span_limits=SpanLimits(max_span_attributes=12))
    memory = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=grpc_address, insecure=True)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e.jaeger", "2.0.1")
    for call in range(3):
        with tracer.start_as_current_span("POST /calls", kind=SpanKind.SERVER, attributes={
                "call.id": f"c-{call}", "queue.wait_ms": call * 10, "ratio": 0.25, "vip": call == 1,
                "tags": ("a", "b"), "ports": (80, 443)}) as root:
            root.add_event("accepted", {"position": call, "queue": "billing"})
            with tracer.start_as_current_span("lookup", kind=SpanKind.CLIENT) as child:
                child.add_event("failed", {"event": "custom-name", "attempt": 2})
                child.set_status(Status(StatusCode.ERROR, "agent unreachable"))
            with tracer.start_as_current_span("enqueue", kind=SpanKind.PRODUCER,
                                              links=[Link(REMOTE_PARENT, {"why": "batch"}),
                                                     Link(REMOTE_PARENT, {"opentracing.ref_type": "child_of"})]):
                pass
            root.set_status(Status(StatusCode.OK))
    remote = trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT))
    with tracer.start_as_current_span("consume", context=remote, kind=SpanKind.CONSUMER,
                                      attributes={f"a{i}": i for i in range(15)}), \
            tracer.start_as_current_span("work"):  # INTERNAL
        pass
    finished = list(memory.get_finished_spans())
    provider.shutdown()
    return finished, resource


def value_of(tag: model_pb2.KeyValue) -> Any:
    return {model_pb2.STRING: tag.v_str, model_pb2.BOOL: tag.v_bool, model_pb2.INT64: tag.v_int64,
            model_pb2.FLOAT64: tag.v_float64, model_pb2.BINARY: tag.v_binary}[tag.v_type]


def typed(value: Any) -> tuple[int, Any]:
    """An SDK attribute value as (Jaeger v_type, value) per the mapping: sequences become JSON strings."""
    if isinstance(value, bool):
        return model_pb2.BOOL, value
    if isinstance(value, int):
        return model_pb2.INT64, value
    if isinstance(value, float):
        return model_pb2.FLOAT64, value
    if isinstance(value, tuple | list):
        return model_pb2.STRING, json.dumps(list(value), separators=(",", ":"))
    return model_pb2.STRING, value


def tags_of(kvs: Any) -> dict[str, tuple[int, Any]]:
    return {kv.key: (kv.v_type, value_of(kv)) for kv in kvs}


def expected_span(span: Any) -> dict[str, Any]:
    ctx = span.get_span_context()
    tags = {key: typed(value) for key, value in span.attributes.items()}
    tags["span.kind"] = (model_pb2.STRING, KINDS[span.kind])
    tags["otel.scope.name"] = (model_pb2.STRING, span.instrumentation_scope.name)
    tags["otel.scope.version"] = (model_pb2.STRING, span.instrumentation_scope.version)
    if span.status.status_code is StatusCode.OK:
        tags["otel.status_code"] = (model_pb2.STRING, "OK")
    elif span.status.status_code is StatusCode.ERROR:
        tags["otel.status_code"] = (model_pb2.STRING, "ERROR")
        tags["error"] = (model_pb2.BOOL, True)
    if span.status.description:
        tags["otel.status_description"] = (model_pb2.STRING, span.status.description)
    if ctx.trace_state:
        tags["w3c.tracestate"] = (model_pb2.STRING, ctx.trace_state.to_header())
    if span.dropped_attributes:
        tags["otel.dropped_attributes_count"] = (model_pb2.INT64, span.dropped_attributes)
    references = []
    if span.parent is not None:
        references.append((span.parent.trace_id.to_bytes(16, "big"), span.parent.span_id.to_bytes(8, "big"),
                           model_pb2.CHILD_OF))
    for link in span.links:
        ref_type = model_pb2.CHILD_OF if link.attributes.get("opentracing.ref_type") == "child_of" \
            else model_pb2.FOLLOWS_FROM
        references.append((link.context.trace_id.to_bytes(16, "big"), link.context.span_id.to_bytes(8, "big"),
                           ref_type))
    logs = []
    for event in span.events:
        fields = {} if "event" in event.attributes else {"event": (model_pb2.STRING, event.name)}
        fields.update({key: typed(value) for key, value in event.attributes.items()})
        logs.append((event.timestamp, fields))
    return {"trace_id": ctx.trace_id.to_bytes(16, "big"), "operation_name": span.name,
            "references": references, "start": span.start_time, "duration": span.end_time - span.start_time,
            "flags": 0,  # the Python SDK leaves the W3C flags out of OTLP Span.flags; the mapping copies bit 0
            "tags": tags, "logs": logs, "service": span.resource.attributes["service.name"]}


def received_span(span: model_pb2.Span, process: model_pb2.Process) -> dict[str, Any]:
    return {"trace_id": span.trace_id, "operation_name": span.operation_name,
            "references": [(r.trace_id, r.span_id, r.ref_type) for r in span.references],
            "start": span.start_time.seconds * 10**9 + span.start_time.nanos,
            "duration": span.duration.seconds * 10**9 + span.duration.nanos, "flags": span.flags,
            "tags": tags_of(span.tags),
            "logs": [(log.timestamp.seconds * 10**9 + log.timestamp.nanos, tags_of(log.fields))
                     for log in span.logs],
            "service": process.service_name}


async def test_sdk_spans_arrive_in_jaeger_mapped_field_by_field(collector: Any, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          batch: {{timeout: 50ms}}
        exporters:
          jaeger: {{endpoint: "{collector.endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch], exporters: [jaeger]}}
    """))
    gateway = Service.from_files([str(config)])
    await gateway.start()
    try:
        address = gateway.graph.find(Kind.RECEIVER, "otlp").grpc_address
        results = await asyncio.gather(asyncio.to_thread(emit, address, "callcenter-api"),
                                       asyncio.to_thread(emit, address, "routing"))
        finished = [span for spans, _ in results for span in spans]
        deadline = time.monotonic() + 15
        while len(collector.spans()) < len(finished) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        assert await gateway.shutdown() == []
    assert len(finished) == 2 * 11
    received = {span.span_id: received_span(span, batch.process)
                for batch in collector.batches() for span in batch.spans}
    expected = {s.get_span_context().span_id.to_bytes(8, "big"): expected_span(s) for s in finished}
    assert received.keys() == expected.keys()
    for span_id, want in expected.items():
        assert received[span_id] == want, want["operation_name"]
    for batch in collector.batches():  # one process per resource, its tags the other resource attributes
        _, resource = next(r for r in results if r[1].attributes["service.name"] == batch.process.service_name)
        assert tags_of(batch.process.tags) == {key: typed(value) for key, value in resource.attributes.items()
                                               if key != "service.name"}
