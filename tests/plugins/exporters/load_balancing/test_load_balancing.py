"""Routing by trace id: unit (two OtlpSinks as backends) and end to end (three sampling gateways on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.load_balancing.factory import factory

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def tid(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=16).digest()


def number(span: Span) -> int:
    """The trace number a test span belongs to (encoded in its span id, which is never all zeros)."""
    return int.from_bytes(span.span_id, "big") // 1000


def span(n: int, part: int) -> Span:
    out = Span(trace_id=tid(n), span_id=(n * 1000 + part + 1).to_bytes(8, "big"), name=f"op-{part}")
    if part:
        out.parent_span_id = (n * 1000 + 1).to_bytes(8, "big")
    return out


def request(*groups: tuple[str, list[Span]]) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    for service, spans in groups:
        rs = out.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        rs.scope_spans.add().spans.extend(spans)
    return out


def traces_request(numbers: range, part: int) -> ExportTraceServiceRequest:
    """Span ``part`` of each trace in ``numbers``, over two resources."""
    return request(("a", [span(n, part) for n in numbers if n % 2 == 0]),
                   ("b", [span(n, part) for n in numbers if n % 2 == 1]))


def owners(sinks: list[OtlpSink]) -> dict[bytes, set[int]]:
    """trace id → indexes of the sinks that received some of its spans."""
    seen: dict[bytes, set[int]] = defaultdict(set)
    for index, sink in enumerate(sinks):
        for received in sink.received(Signal.TRACES):
            for rs in received.batch.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        seen[s.trace_id].add(index)
    return seen


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_each_trace_goes_to_one_backend_with_its_resource() -> None:
    sinks = [OtlpSink(), OtlpSink()]
    for sink in sinks:
        await sink.start()
    config = decode(factory.create_default_config(), {
        "resolver": {"static": {"hostnames": [s.grpc_endpoint for s in sinks]}},
        "protocol": {"otlp": {"tls": {"insecure": True}}}})
    assert factory.create_traces is not None
    exporter = factory.create_traces(settings_for(Kind.EXPORTER, "load_balancing", Signal.TRACES), config)
    await exporter.start(None)
    try:
        for part in range(4):
            await exporter.consume_traces(traces_request(range(40), part))
        await wait_for(lambda: sum(s.item_count(Signal.TRACES) for s in sinks) == 160)
    finally:
        await exporter.shutdown()
        for sink in sinks:
            await sink.stop()
    seen = owners(sinks)
    assert len(seen) == 40 and all(len(where) == 1 for where in seen.values())
    assert {exporter.ring.endpoint_for(t) for t in seen} == {s.grpc_endpoint for s in sinks}
    for index, sink in enumerate(sinks):
        for received in sink.received(Signal.TRACES):
            for rs in received.batch.resource_spans:
                service = rs.resource.attributes[0].value.string_value
                for s in rs.scope_spans[0].spans:
                    assert exporter.ring.endpoint_for(s.trace_id) == sinks[index].grpc_endpoint
                    assert service == ("a" if number(s) % 2 == 0 else "b")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


async def test_no_trace_is_split_across_three_sampling_gateways(tmp_path: Path) -> None:
    """SDK-like clients → front gateway (load_balancing) → 3 gateways (tail_sampling) → one sink each."""
    sinks = [OtlpSink() for _ in range(3)]
    samplers = []
    for index, sink in enumerate(sinks):
        await sink.start()
        sampler = Service.from_files([write(tmp_path, f"sampler-{index}.yaml", f"""
            receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
            processors:
              tail_sampling:
                decision_wait: 300ms
                policies: [{{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}]
            exporters: {{otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}}}
            service:
              telemetry: {{metrics: {{address: ""}}}}
              pipelines: {{traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp_grpc]}}}}
        """)])
        await sampler.start()
        samplers.append(sampler)
    addresses = [s.graph.find(Kind.RECEIVER, "otlp").grpc_address for s in samplers]
    front = Service.from_files([write(tmp_path, "front.yaml", f"""
        receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
        exporters:
          loadbalancing:
            protocol: {{otlp: {{tls: {{insecure: true}}}}}}
            resolver: {{static: {{hostnames: {addresses}}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines: {{traces: {{receivers: [otlp], exporters: [loadbalancing]}}}}
    """)])
    await front.start()
    try:
        channel = grpc.aio.insecure_channel(front.graph.find(Kind.RECEIVER, "otlp").grpc_address)
        export = channel.unary_unary(EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                     response_deserializer=lambda b: b)
        # 60 traces of 5 spans; every third trace has an error in its last span. Each request carries one span of
        # every trace, so each trace is spread over 5 requests, 2 resources and 3 backends' worth of routing.
        for part in range(5):
            batch = traces_request(range(60), part)
            for rs in batch.resource_spans:
                for s in rs.scope_spans[0].spans:
                    if part == 4 and number(s) % 3 == 0:
                        s.status.code = 2  # type: ignore[assignment]
            await export(batch, timeout=10)
        await channel.close()
        await wait_for(lambda: sum(s.item_count(Signal.TRACES) for s in sinks) >= 100)
        await asyncio.sleep(0.5)  # nothing more may arrive
    finally:
        assert await front.shutdown() == []
        for sampler in samplers:
            assert await sampler.shutdown() == []
        for sink in sinks:
            await sink.stop()
    seen = owners(sinks)
    assert set(seen) == {tid(n) for n in range(60) if n % 3 == 0}  # exactly the error traces were kept...
    assert all(len(where) == 1 for where in seen.values())  # ...each by one gateway only...
    assert len({i for where in seen.values() for i in where}) == 3  # ...and every gateway kept some
    assert sum(s.item_count(Signal.TRACES) for s in sinks) == 100  # ...whole: 20 traces x 5 spans
