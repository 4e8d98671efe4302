"""OtlpSink with plain clients (grpc.aio, aiohttp) and with the real OpenTelemetry SDK exporters."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from gateway import otlpjson
from gateway.component import Signal
from gateway.helpers.exporter import retry_info_delay
from gateway.testing import make_logs, make_metrics, make_traces
from gateway.testing.otlp_sink import OtlpSink

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
async def channel(sink: OtlpSink) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(sink.grpc_endpoint) as ch:
        yield ch


def trace_call(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(TRACE_EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                               response_deserializer=ExportTraceServiceResponse.FromString)


async def test_grpc_requests_are_recorded_with_metadata(sink: OtlpSink, channel: grpc.aio.Channel) -> None:
    batch = make_traces(6)
    response = await trace_call(channel)(batch, metadata=(("x-tenant", "blue"),), timeout=5)
    assert not response.HasField("partial_success")
    assert sink.batches(Signal.TRACES) == [batch]
    assert sink.item_count(Signal.TRACES) == 6 and len(sink.spans()) == 6
    assert sink.requests[0].headers["x-tenant"] == "blue"
    assert sink.requests[0].transport == "grpc"


async def test_http_protobuf_gzip_and_json(sink: OtlpSink) -> None:
    metrics, logs = make_metrics(4), make_logs(3)
    async with aiohttp.ClientSession() as session:
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        body = gzip.compress(metrics.SerializeToString())
        async with session.post(f"{sink.http_endpoint}/v1/metrics", data=body, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "application/x-protobuf"
        async with session.post(f"{sink.http_endpoint}/v1/logs", data=otlpjson.encode(logs),
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            otlpjson.decode(await response.read(), ExportLogsServiceResponse)
    assert sink.batches(Signal.METRICS) == [metrics]
    assert sink.batches(Signal.LOGS) == [logs]
    assert sink.received(Signal.METRICS)[0].headers["content-encoding"] == "gzip"


async def test_scripted_grpc_failure_carries_retry_info(sink: OtlpSink, channel: grpc.aio.Channel) -> None:
    sink.fail_next(1, grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.5, message="slow down")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await trace_call(channel)(make_traces(1), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details() == "slow down"
    assert retry_info_delay(info.value.trailing_metadata()) == pytest.approx(0.5)
    await trace_call(channel)(make_traces(1), timeout=5)  # the script is used up: back to success
    assert [r.accepted for r in sink.requests] == [False, True]
    assert sink.item_count(Signal.TRACES) == 1


async def test_scripted_http_failure_has_status_body_and_retry_after(sink: OtlpSink) -> None:
    sink.fail_next(1, http_status=429, retry_after=2, message="slow down")
    async with aiohttp.ClientSession() as session, session.post(
            f"{sink.http_endpoint}/v1/traces", data=make_traces(1).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert status_pb2.Status.FromString(await response.read()).message == "slow down"
    assert len(sink.received(Signal.TRACES)) == 1 and sink.batches(Signal.TRACES) == []


async def test_partial_success_on_both_transports(sink: OtlpSink, channel: grpc.aio.Channel) -> None:
    sink.partial_success_next(2, rejected=1, message="one bad span")
    response = await trace_call(channel)(make_traces(3), timeout=5)
    partial = response.partial_success
    assert (partial.rejected_spans, partial.error_message) == (1, "one bad span")
    async with aiohttp.ClientSession() as session, session.post(
            f"{sink.http_endpoint}/v1/traces", data=make_traces(3).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"}) as http_response:
        body = ExportTraceServiceResponse.FromString(await http_response.read())
    assert body.partial_success.rejected_spans == 1
    assert sink.item_count(Signal.TRACES) == 6  # partially successful requests are still recorded


async def test_undecodable_http_body_is_400_and_not_recorded(sink: OtlpSink) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{sink.http_endpoint}/v1/traces", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert "cannot decode body" in (await response.json())["message"]
    assert sink.requests == []


async def test_clear_forgets_requests_and_script(sink: OtlpSink, channel: grpc.aio.Channel) -> None:
    await trace_call(channel)(make_traces(1), timeout=5)
    sink.fail_next(5)
    sink.clear()
    await trace_call(channel)(make_traces(1), timeout=5)
    assert len(sink.requests) == 1 and sink.requests[0].accepted


def _sdk_export(exporter: SpanExporter) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-client"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
        pass
    provider.shutdown()


async def test_the_opentelemetry_sdk_exporters_talk_to_the_sink(sink: OtlpSink) -> None:
    await asyncio.to_thread(_sdk_export, GrpcSpanExporter(endpoint=sink.grpc_endpoint, insecure=True))
    await asyncio.to_thread(_sdk_export, HttpSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces"))
    assert sorted(s.name for s in sink.spans()) == ["child", "child", "parent", "parent"]
    assert {r.transport for r in sink.requests} == {"grpc", "http"}
