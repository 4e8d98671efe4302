"""End to end: the real OpenTelemetry SDK → gateway (otlp → tail_sampling → otlp_grpc) → OtlpSink."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing.otlp_sink import OtlpSink


def emit(grpc_address: str) -> dict[str, str]:
    """20 traces of 3 spans: 0-4 fail, 5-9 last 3 s (explicit timestamps), the rest are fast and fine."""
    provider = TracerProvider(resource=Resource.create({"service.name": "callcenter-api"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=grpc_address, insecure=True),
                                                   max_export_batch_size=7, schedule_delay_millis=50))
    tracer = provider.get_tracer("e2e")
    kinds: dict[str, str] = {}
    base = time.time_ns()
    for call in range(20):
        kind = "error" if call < 5 else "slow" if call < 10 else "normal"
        duration = 3_000_000_000 if kind == "slow" else 5_000_000
        root = tracer.start_span("POST /calls", start_time=base)
        kinds[f"{root.get_span_context().trace_id:032x}"] = kind
        context = set_span_in_context(root)
        for step in range(2):
            child = tracer.start_span(f"step-{step}", context=context, start_time=base + 1000)
            if kind == "error" and step == 1:
                child.set_status(Status(StatusCode.ERROR, "no agent"))
            child.end(end_time=base + 2000)
        root.end(end_time=base + duration)
    provider.shutdown()
    return kinds


async def test_sdk_traces_are_sampled_whole_through_a_running_gateway(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          tail_sampling:
            decision_wait: 300ms
            policies:
              - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
              - {{name: slow, type: latency, latency: {{threshold_ms: 2000}}}}
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        service:
          telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp_grpc]}}
    """))
    gateway = Service.from_files([str(config)])
    await gateway.start()
    try:
        address = gateway.graph.find(Kind.RECEIVER, "otlp").grpc_address
        kinds = await asyncio.to_thread(emit, address)
        deadline = time.monotonic() + 15
        while sink.item_count(Signal.TRACES) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing else may arrive
    finally:
        assert await gateway.shutdown() == []
        await sink.stop()
    by_trace: dict[str, list[str]] = defaultdict(list)
    policies: dict[str, set[str]] = defaultdict(set)
    for received in sink.received(Signal.TRACES):
        for rs in received.batch.resource_spans:
            assert {kv.key: kv.value.string_value for kv in rs.resource.attributes}["service.name"] == (
                "callcenter-api")
            for ss in rs.scope_spans:
                for span in ss.spans:
                    by_trace[span.trace_id.hex()].append(span.name)
                    policies[span.trace_id.hex()] |= {kv.value.string_value for kv in span.attributes
                                                       if kv.key == "tailsampling.policy"}
    assert {t: kinds[t] for t in by_trace} == {t: k for t, k in kinds.items() if k != "normal"}
    assert all(sorted(names) == ["POST /calls", "step-0", "step-1"] for names in by_trace.values())
    assert {t: policies[t] for t in by_trace} == {t: {"errors" if kinds[t] == "error" else "slow"} for t in by_trace}
    exposition = gateway.telemetry.exposition().decode()
    assert ('otelcol_processor_tail_sampling_global_count_traces_sampled_total{decision="not_sampled",'
            'processor="tail_sampling",sampled="false"} 10.0') in exposition
