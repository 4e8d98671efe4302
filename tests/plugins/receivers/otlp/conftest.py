"""A running ``otlp`` receiver on 127.0.0.1:0 with real grpc.aio and aiohttp clients, and its counters.

Everything tests need comes through fixtures (``rx``, ``start_receiver``, ``config_for``): with pytest's
importlib mode a test module cannot import this file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import grpc
import pytest
from google.rpc import status_pb2

from gateway._host.telemetry import Telemetry
from gateway.component import Batch, Kind, Signal
from gateway.configtypes import decode
from gateway.testing import Sink, make_host, make_logs, make_metrics, make_traces, settings_for
from plugins.receivers.otlp.factory import factory
from plugins.receivers.otlp.receiver import OtlpReceiver

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GRPC_PATHS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
HTTP_PATHS = {Signal.TRACES: "/v1/traces", Signal.METRICS: "/v1/metrics", Signal.LOGS: "/v1/logs"}
BUILDERS: dict[Signal, Callable[..., Batch]] = {
    Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
#: Small limits so the size tests stay fast.
GRPC_LIMIT_MIB = 1
HTTP_LIMIT = 64 * 1024

T = TypeVar("T")


@dataclass
class HttpReply:
    status: int
    headers: Any
    body: bytes

    @property
    def status_message(self) -> status_pb2.Status:
        """The google.rpc.Status of an error answer, decoded by the answer's content type."""
        if self.headers["Content-Type"].startswith(JSON):
            from gateway import otlpjson
            return otlpjson.decode(self.body, status_pb2.Status)
        return status_pb2.Status.FromString(self.body)

    @property
    def message(self) -> str:
        return self.status_message.message


@dataclass
class GrpcReply:
    code: grpc.StatusCode
    details: str
    error: grpc.aio.AioRpcError | None = None


@dataclass
class Harness:
    receiver: OtlpReceiver
    handles: list[Any]
    sink: Any
    telemetry: Telemetry
    channel: grpc.aio.Channel | None = None
    session: aiohttp.ClientSession | None = None

    async def grpc(self, signal: Signal, payload: bytes | Batch,
                   compression: grpc.Compression | None = None) -> GrpcReply:
        assert self.channel is not None
        body = payload if isinstance(payload, bytes) else payload.SerializeToString()
        call = self.channel.unary_unary(GRPC_PATHS[signal])
        try:
            await call(body, compression=compression, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return GrpcReply(exc.code(), exc.details() or "", exc)
        return GrpcReply(grpc.StatusCode.OK, "")

    async def http(self, path: str, body: bytes = b"", content_type: str | None = PROTOBUF,
                   headers: dict[str, str] | None = None, method: str = "POST") -> HttpReply:
        assert self.session is not None
        all_headers = {"Content-Type": content_type} if content_type else {}
        all_headers.update(headers or {})
        url = f"http://{self.receiver.http_address}{path}"
        async with self.session.request(method, url, data=body, headers=all_headers,
                                        auto_decompress=False) as response:
            return HttpReply(response.status, response.headers, await response.read())

    async def send_valid(self, transport: str, signal: Signal = Signal.TRACES, items: int = 3) -> Batch:
        """Send one valid request and check it is answered with success; returns the batch sent."""
        batch = BUILDERS[signal](items)
        if transport == "grpc":
            reply = await self.grpc(signal, batch)
            assert reply.code is grpc.StatusCode.OK, reply
        else:
            answer = await self.http(HTTP_PATHS[signal], batch.SerializeToString())
            assert answer.status == 200, (answer.status, answer.body)
        return batch

    def received(self, signal: Signal = Signal.TRACES) -> list[Batch]:
        return self.sink.batches[signal]

    def sample(self, name: str, **labels: str) -> float:
        value = self.telemetry.registry.get_sample_value(name, {"receiver": "otlp", **labels})
        return value or 0.0

    def bad_requests(self, transport: str, reason: str) -> float:
        return self.sample("otelgw_receiver_bad_requests_total", transport=transport, reason=reason)

    def all_bad_requests(self) -> float:
        """Bad requests over every transport and reason."""
        return sum(self.bad_requests(t, r) for t in ("grpc", "http") for r in REASONS)

    def accepted(self, transport: str, signal: Signal = Signal.TRACES) -> float:
        return self.sample(f"otelcol_receiver_accepted_{signal.item_name}_total", transport=transport)

    def refused(self, transport: str, signal: Signal = Signal.TRACES) -> float:
        return self.sample(f"otelcol_receiver_refused_{signal.item_name}_total", transport=transport)

    async def still_serving(self, transport: str, bad: Callable[[], Awaitable[T]]) -> T:
        """Run ``bad`` next to a valid request, then send another valid one; both valid ones must arrive."""
        before = len(self.received())
        result, concurrent = await asyncio.gather(bad(), self.send_valid(transport))
        after = await self.send_valid(transport)
        arrived = self.received()[before:]
        assert concurrent in arrived and after in arrived, "a valid request was lost next to a bad one"
        return result


REASONS = ("malformed", "bad_compression", "too_large", "unsupported_content_type", "unsupported_encoding",
           "not_found", "method_not_allowed", "unwired_signal", "incomplete_body", "unknown_method", "slow_body",
           "slow_header", "too_many_connections")


def config_for(grpc_settings: dict[str, Any] | None = None, http_settings: dict[str, Any] | None = None,
               protocols: Iterable[str] = ("grpc", "http")) -> Any:
    settings = {
        "grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": GRPC_LIMIT_MIB, **(grpc_settings or {})},
        "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": HTTP_LIMIT, **(http_settings or {})},
    }
    return decode(factory.create_default_config(), {"protocols": {p: settings[p] for p in protocols}})


@pytest.fixture(name="config_for")
def config_for_fixture() -> Callable[..., Any]:
    """``config_for(grpc_settings, http_settings, protocols)`` → a decoded Config on 127.0.0.1:0."""
    return config_for


@pytest.fixture
async def start_receiver():
    """``await start_receiver(...)`` → a started Harness; everything is shut down after the test."""
    harnesses: list[Harness] = []

    async def start(*, signals: Iterable[Signal] = tuple(Signal), sink: Any = None,
                    config: Any = None) -> Harness:
        telemetry = Telemetry()
        sink = sink if sink is not None else Sink()
        config = config if config is not None else config_for()
        handles = [factory.create_fn(signal)(settings_for(Kind.RECEIVER, "otlp", signal, telemetry),  # type: ignore[misc]
                                             config, sink) for signal in signals]
        host = make_host(telemetry)
        try:
            for handle in handles:  # as the host does: start and shut down once per signal
                await handle.start(host)
        except BaseException:
            for handle in handles:
                await handle.shutdown()
            raise
        harness = Harness(handles[0].component, handles, sink, telemetry)
        harnesses.append(harness)
        if harness.receiver.grpc_address:
            harness.channel = grpc.aio.insecure_channel(harness.receiver.grpc_address)
        if harness.receiver.http_address:
            harness.session = aiohttp.ClientSession()
        return harness

    yield start
    for harness in harnesses:
        if harness.channel is not None:
            await harness.channel.close()
        if harness.session is not None:
            await harness.session.close()
        for handle in harness.handles:
            await handle.shutdown()


@pytest.fixture
async def rx(start_receiver) -> Harness:
    """Both protocols, every signal wired to one Sink, limits of GRPC_LIMIT_MIB and HTTP_LIMIT."""
    return await start_receiver()
