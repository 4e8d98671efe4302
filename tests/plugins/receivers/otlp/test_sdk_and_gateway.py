"""The receiver against real OpenTelemetry SDK exporters, and inside a real pipeline graph."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway import Factory, Kind, Signal, hookimpl
from gateway._host.config import build_config
from gateway._host.graph import Graph
from gateway._host.registry import load_registry
from gateway._host.telemetry import Telemetry
from gateway.testing import Sink, make_host, make_metrics, make_traces


def emit_two_spans(exporter: Any) -> dict[str, Any]:
    """Runs in a thread: the SDK exporters block, and the receiver needs the event loop meanwhile."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sdk-test", "1.2.3")
    with (tracer.start_as_current_span("GET /cart", attributes={"http.route": "/cart", "retries": 3}) as parent,
          tracer.start_as_current_span("SELECT carts", attributes={"db.system": "postgresql"}) as child):
        pass  # the child ends first, so SimpleSpanProcessor sends two requests
    provider.shutdown()
    return {"trace_id": parent.get_span_context().trace_id.to_bytes(16, "big"),
            "parent_id": parent.get_span_context().span_id.to_bytes(8, "big"),
            "child_id": child.get_span_context().span_id.to_bytes(8, "big")}


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


@pytest.mark.parametrize("transport", ["grpc", "http", "http+gzip"])
async def test_sdk_span_exporter_spans_arrive_with_ids_and_attributes(rx, transport):
    if transport == "grpc":
        exporter = GrpcSpanExporter(endpoint=rx.receiver.grpc_address, insecure=True, timeout=5)
    else:
        compression = Compression.Gzip if transport.endswith("gzip") else Compression.NoCompression
        exporter = HttpSpanExporter(endpoint=f"http://{rx.receiver.http_address}/v1/traces", timeout=5,
                                    compression=compression)
    ids = await asyncio.to_thread(emit_two_spans, exporter)
    spans = {span.name: span for span in rx.sink.spans()}
    assert set(spans) == {"GET /cart", "SELECT carts"}
    parent, child = spans["GET /cart"], spans["SELECT carts"]
    assert parent.trace_id == child.trace_id == ids["trace_id"]
    assert parent.span_id == ids["parent_id"] and child.span_id == ids["child_id"]
    assert child.parent_span_id == ids["parent_id"]
    assert attributes(parent.attributes) == {"http.route": "/cart", "retries": 3}
    assert attributes(child.attributes) == {"db.system": "postgresql"}
    resource = rx.received()[0].resource_spans[0]
    assert attributes(resource.resource.attributes)["service.name"] == "checkout"
    assert resource.scope_spans[0].scope.name == "sdk-test"
    assert rx.accepted("http" if transport.startswith("http") else "grpc") == 2


@dataclass(frozen=True)
class SinkConfig:
    #: unused; the sink exporter keeps what it receives
    label: str = ""


SINKS: dict[Signal, Sink] = {}


def create_sink(settings: Any, config: SinkConfig) -> Sink:
    return SINKS.setdefault(settings.signal, Sink())


sink_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [
    Factory("sink", Kind.EXPORTER, SinkConfig, create_traces=create_sink, create_metrics=create_sink)]))


async def test_in_a_gateway_graph_one_server_serves_the_wired_signals_only():
    SINKS.clear()
    raw = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                                             "http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"sink": None},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["sink"]},
                                  "traces/copy": {"receivers": ["otlp"], "exporters": ["sink"]}}},
    }
    telemetry = Telemetry()
    graph = Graph(build_config(raw, load_registry([sink_plugin])), telemetry)
    host = make_host(telemetry)
    await graph.start(host)
    try:
        receiver = graph.find(Kind.RECEIVER, "otlp")
        async with grpc.aio.insecure_channel(receiver.grpc_address) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            await export(make_traces(4).SerializeToString())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")(
                    make_metrics(2).SerializeToString())
            assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
        # one receiver fanned out to both traces pipelines, which share the one exporter instance
        assert SINKS[Signal.TRACES].item_count(Signal.TRACES) == 8
    finally:
        assert await graph.shutdown(host) == []
    with pytest.raises(OSError):  # the server is gone once the graph is shut down
        await asyncio.open_connection(*receiver.grpc_address.rsplit(":", 1))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_a_port_in_use_fails_start_clearly(rx, start_receiver, config_for, protocol):
    taken = getattr(rx.receiver, f"{protocol}_address")
    other = "grpc" if protocol == "http" else "http"
    config = config_for(**{f"{protocol}_settings": {"endpoint": taken}})
    name = {"grpc": "gRPC", "http": "HTTP"}[protocol]
    with pytest.raises(OSError, match=f"otlp receiver \\({name}\\) cannot listen on {taken}: address already in use$"):
        await start_receiver(config=config)
    await rx.send_valid(protocol)  # the first receiver is untouched
    await rx.send_valid(other)
