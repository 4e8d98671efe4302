"""OTLP/gRPC: every signal, gzip, and every bad input, each followed (and accompanied) by a valid request."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gateway.component import Signal, count_items
from gateway.testing import Sink, make_logs, make_metrics, make_traces

BUILDERS = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
MIB = 1024 * 1024


@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.value)
@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip], ids=["plain", "gzip"])
async def test_every_signal_arrives_intact(rx, signal, compression):
    batch = BUILDERS[signal](25)
    reply = await rx.grpc(signal, batch, compression)
    assert reply.code is grpc.StatusCode.OK, reply
    assert rx.received(signal) == [batch]
    assert rx.accepted("grpc", signal) == 25
    assert rx.refused("grpc", signal) == 0


async def test_the_generated_stub_gets_a_typed_response(rx):
    stub = trace_service_pb2_grpc.TraceServiceStub(rx.channel)
    response = await stub.Export(make_traces(5))
    assert isinstance(response, trace_service_pb2.ExportTraceServiceResponse)
    assert not response.HasField("partial_success")


async def test_an_empty_request_is_answered_ok_and_not_forwarded(rx):
    assert (await rx.grpc(Signal.TRACES, b"")).code is grpc.StatusCode.OK
    assert (await rx.grpc(Signal.LOGS, make_logs(0))).code is grpc.StatusCode.OK
    assert rx.received(Signal.TRACES) == [] and rx.received(Signal.LOGS) == []
    assert rx.all_bad_requests() == 0


async def test_garbage_bytes_are_invalid_argument(rx):
    reply = await rx.still_serving("grpc", lambda: rx.grpc(Signal.TRACES, b"\xff\xfenot a protobuf"))
    assert reply.code is grpc.StatusCode.INVALID_ARGUMENT
    assert reply.details.startswith("malformed request (16 bytes): malformed protobuf: ")
    assert "ExportTraceServiceRequest" in reply.details
    assert rx.bad_requests("grpc", "malformed") == 1
    assert rx.all_bad_requests() == 1


async def test_truncated_protobuf_is_invalid_argument(rx):
    truncated = make_traces(10).SerializeToString()[:-7]
    reply = await rx.still_serving("grpc", lambda: rx.grpc(Signal.TRACES, truncated))
    assert reply.code is grpc.StatusCode.INVALID_ARGUMENT
    assert reply.details.startswith(f"malformed request ({len(truncated)} bytes)")
    assert rx.bad_requests("grpc", "malformed") == 1


async def test_a_message_over_the_limit_is_resource_exhausted(rx):
    oversized = b"\x00" * (2 * MIB)  # GRPC_LIMIT_MIB is 1
    reply = await rx.still_serving("grpc", lambda: rx.grpc(Signal.TRACES, oversized))
    assert reply.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max (2097152 vs. 1048576)" in reply.details
    # grpc rejects it before any of our code runs, so no bad-request counter moves (see README).
    assert rx.all_bad_requests() == 0


async def test_a_gzip_bomb_is_stopped_by_the_limit_after_decompression(rx):
    bomb = b"\x00" * (2 * MIB)  # about 2 KiB on the wire
    reply = await rx.still_serving("grpc", lambda: rx.grpc(Signal.TRACES, bomb, grpc.Compression.Gzip))
    assert reply.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in reply.details


async def test_an_unwired_signal_is_unimplemented(start_receiver):
    rx = await start_receiver(signals=[Signal.TRACES, Signal.LOGS])
    reply = await rx.still_serving("grpc", lambda: rx.grpc(Signal.METRICS, make_metrics(3)))
    assert reply.code is grpc.StatusCode.UNIMPLEMENTED
    assert reply.details == "this receiver takes no metrics: no metrics pipeline lists it"
    assert rx.bad_requests("grpc", "unwired_signal") == 1
    assert (await rx.grpc(Signal.LOGS, make_logs(2))).code is grpc.StatusCode.OK


async def test_an_unknown_method_is_unimplemented(rx):
    profiles = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
    call = rx.channel.unary_unary(profiles)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == (
        f"unknown method {profiles}; OTLP/gRPC serves /opentelemetry.proto.collector.trace.v1.TraceService/Export, "
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export, "
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    assert rx.bad_requests("grpc", "unknown_method") == 1
    assert count_items(Signal.TRACES, (await rx.send_valid("grpc"))) == 3


async def test_an_unknown_streaming_method_is_unimplemented_too(rx):
    """A client that streams to a wrong method (e.g. an Arrow exporter) is answered and counted the same way."""
    call = rx.channel.stream_stream("/opentelemetry.proto.experimental.arrow.v1.ArrowTracesService/ArrowTraces")
    stream = call(iter([b"x", b"y"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream:
            pass
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert rx.bad_requests("grpc", "unknown_method") == 1
    assert count_items(Signal.TRACES, (await rx.send_valid("grpc"))) == 3


async def test_many_concurrent_requests_all_arrive(rx):
    batches = await asyncio.gather(*(rx.send_valid("grpc", items=10) for _ in range(50)))
    assert len(rx.received()) == 50
    assert all(batch in rx.received() for batch in batches)
    assert rx.accepted("grpc") == 500


class SlowSink(Sink):
    """Holds each batch briefly and records how many it held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = self.peak = 0

    async def consume_traces(self, batch):
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.02)
        self.active -= 1
        await super().consume_traces(batch)


async def test_max_concurrent_streams_caps_requests_in_flight_per_connection(start_receiver, config_for):
    sink = SlowSink()
    rx = await start_receiver(config=config_for({"max_concurrent_streams": 2}), sink=sink)
    replies = await asyncio.gather(*(rx.grpc(Signal.TRACES, make_traces(1)) for _ in range(10)))
    assert 1 <= sink.peak <= 2
    # grpc refuses streams over the limit with REFUSED_STREAM, which clients see as retryable UNAVAILABLE.
    assert {r.code for r in replies} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert len(rx.received()) == sum(r.code is grpc.StatusCode.OK for r in replies) >= 2
