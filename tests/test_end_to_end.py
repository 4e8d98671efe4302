"""End to end: the real OpenTelemetry SDK → gateway A → (otlp_http → sink) and (otlp_grpc → gateway B → sink).

Traces go in over gRPC and over HTTP/protobuf, metrics over gRPC, logs over HTTP. Everything must arrive at the
sink twice (once per route) with ids, names, attributes, resources and counts unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing.otlp_sink import OtlpSink

RESOURCE = Resource.create({"service.name": "callcenter-api", "deployment.environment": "test"})


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
async def topology(tmp_path):
    sink = OtlpSink()
    await sink.start()
    gateway_b = Service.from_files([write(tmp_path, "b.yaml", f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp_grpc]}}
            metrics: {{receivers: [otlp], exporters: [otlp_grpc]}}
            logs: {{receivers: [otlp], exporters: [otlp_grpc]}}
    """)])
    await gateway_b.start()
    b_address = gateway_b.graph.find(Kind.RECEIVER, "otlp").grpc_address
    gateway_a = Service.from_files([write(tmp_path, "a.yaml", f"""
        receivers:
          otlp:
            protocols:
              grpc: {{endpoint: "127.0.0.1:0"}}
              http: {{endpoint: "127.0.0.1:0"}}
        processors:
          batch: {{timeout: 50ms}}
        exporters:
          otlp:                       # the Collector's name for otlp_grpc
            endpoint: "{b_address}"
            tls: {{insecure: true}}
          otlphttp/direct:            # the Collector's name for otlp_http
            endpoint: "{sink.http_endpoint}"
        service:
          telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch], exporters: [otlp, otlphttp/direct]}}
            metrics: {{receivers: [otlp], processors: [batch], exporters: [otlp, otlphttp/direct]}}
            logs: {{receivers: [otlp], processors: [batch], exporters: [otlp, otlphttp/direct]}}
    """)])
    await gateway_a.start()
    receiver = gateway_a.graph.find(Kind.RECEIVER, "otlp")
    yield receiver.grpc_address, receiver.http_address, sink, gateway_a
    assert await gateway_a.shutdown() == []
    assert await gateway_b.shutdown() == []
    await sink.stop()


async def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for data at the sink")
        await asyncio.sleep(0.02)


def span_view(span) -> tuple:
    attributes = {kv.key: kv.value.WhichOneof("value") and getattr(kv.value, kv.value.WhichOneof("value"))
                  for kv in span.attributes}
    return (span.trace_id.hex(), span.parent_span_id.hex(), span.name, span.kind, span.status.code,
            span.start_time_unix_nano, span.end_time_unix_nano, tuple(sorted(attributes.items())),
            len(span.events))


def expected_view(span) -> tuple:
    ctx = span.get_span_context()
    parent = f"{span.parent.span_id:016x}" if span.parent else ""
    return (f"{ctx.trace_id:032x}", parent, span.name, span.kind.value + 1, span.status.status_code.value,
            span.start_time, span.end_time, tuple(sorted(span.attributes.items())), len(span.events))


def emit_traces(grpc_address: str, http_address: str) -> dict[str, tuple]:
    """Runs in a thread: the SDK's exporters block."""
    finished = []
    for exporter in (GrpcSpanExporter(endpoint=grpc_address, insecure=True),
                     HttpSpanExporter(endpoint=f"http://{http_address}/v1/traces")):
        provider = TracerProvider(resource=RESOURCE)
        memory = InMemorySpanExporter()  # ground truth; a provider's shutdown shuts its exporters down
        provider.add_span_processor(BatchSpanProcessor(exporter))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("e2e", "1.0")
        for call in range(20):
            with tracer.start_as_current_span("POST /calls", attributes={"call.id": f"c-{call}",
                                                                          "queue.wait_ms": call * 10}) as root:
                with tracer.start_as_current_span("route", attributes={"agent.available": call % 2 == 0}) as child:
                    child.add_event("queued", {"position": call})
                    if call % 5 == 0:
                        child.set_status(Status(StatusCode.ERROR, "no agent"))
                root.set_attribute("ratio", 0.5)
        finished.extend(memory.get_finished_spans())
        provider.shutdown()
    return {f"{s.get_span_context().span_id:016x}": expected_view(s) for s in finished}


async def test_traces_arrive_unchanged_through_both_routes(topology):
    grpc_address, http_address, sink, _ = topology
    expected = await asyncio.to_thread(emit_traces, grpc_address, http_address)
    assert len(expected) == 80
    await wait_until(lambda: sink.item_count(Signal.TRACES) >= 160)
    for transport in ("grpc", "http"):
        spans = [s for r in sink.received(Signal.TRACES) if r.transport == transport and r.accepted
                 for rs in r.batch.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert {s.span_id.hex(): span_view(s) for s in spans} == expected, transport
        resources = {kv.key: kv.value.string_value for r in sink.received(Signal.TRACES)
                     if r.transport == transport for rs in r.batch.resource_spans for kv in rs.resource.attributes}
        assert resources["service.name"] == "callcenter-api"
        assert resources["deployment.environment"] == "test"
    assert sink.item_count(Signal.TRACES) == 160


def emit_metrics(grpc_address: str) -> None:
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=grpc_address, insecure=True),
                                           export_interval_millis=60_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("e2e")
    calls = meter.create_counter("calls.offered", unit="{call}")
    wait = meter.create_histogram("queue.wait", unit="s")
    for i in range(10):
        calls.add(1, {"queue": f"q{i % 3}"})
        wait.record(i * 1.5, {"queue": f"q{i % 3}"})
    provider.shutdown()


async def test_metrics_arrive_unchanged_through_both_routes(topology):
    grpc_address, _, sink, _ = topology
    await asyncio.to_thread(emit_metrics, grpc_address)
    await wait_until(lambda: sink.item_count(Signal.METRICS) >= 12)  # 3 counter + 3 histogram points, twice
    by_transport: dict[str, dict] = {}
    for r in sink.received(Signal.METRICS):
        for rm in r.batch.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == "calls.offered":
                        for p in metric.sum.data_points:
                            by_transport.setdefault(r.transport, {})[("calls", p.attributes[0].value.string_value)] \
                                = p.as_int
                    elif metric.name == "queue.wait":
                        for p in metric.histogram.data_points:
                            by_transport.setdefault(r.transport, {})[("wait", p.attributes[0].value.string_value)] \
                                = (p.count, p.sum, tuple(p.bucket_counts))
    assert by_transport["grpc"] == by_transport["http"]
    assert by_transport["grpc"][("calls", "q0")] == 4
    assert by_transport["grpc"][("wait", "q1")][:2] == (3, 1.5 + 6.0 + 10.5)


def emit_logs(http_address: str) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://{http_address}/v1/logs")))
    logger = logging.getLogger("e2e.logs")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for i in range(15):
        logger.warning("caller %d abandoned after %d s", i, 30 + i, extra={"call.id": f"c-{i}"})
    provider.shutdown()
    logger.removeHandler(handler)


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
async def test_logs_arrive_unchanged_through_both_routes(topology):
    _, http_address, sink, gateway_a = topology
    await asyncio.to_thread(emit_logs, http_address)
    await wait_until(lambda: sink.item_count(Signal.LOGS) >= 30)
    for transport in ("grpc", "http"):
        records = [rec for r in sink.received(Signal.LOGS) if r.transport == transport
                   for rl in r.batch.resource_logs for sl in rl.scope_logs for rec in sl.log_records]
        assert sorted(rec.body.string_value for rec in records) == sorted(
            f"caller {i} abandoned after {30 + i} s" for i in range(15))
        assert {rec.severity_text for rec in records} == {"WARN"}
        assert all(any(kv.key == "call.id" for kv in rec.attributes) for rec in records)
    exposition = gateway_a.telemetry.exposition().decode()
    assert 'otelcol_receiver_accepted_log_records_total{receiver="otlp",transport="http"} 15.0' in exposition
    assert 'otelcol_exporter_sent_log_records_total{exporter="otlp"} 15.0' in exposition
    assert 'otelcol_exporter_sent_log_records_total{exporter="otlphttp/direct"} 15.0' in exposition
