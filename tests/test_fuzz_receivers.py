"""Fuzzing the OTLP receiver: malformed protobuf, JSON, gzip and HTTP at both transports, valid traffic alongside.

The gateway runs as in production (uvloop, in its own thread); hypothesis throws bad input at it for a bounded
number of examples. Every request must get a clear client-error answer (never a 5xx, INTERNAL or UNKNOWN, never a
hang), and every valid request sent in between must reach the exporter: nothing else is lost.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import Factory, Kind, Signal, hookimpl
from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import count_items
from gateway.testing import Sink, make_logs, make_metrics, make_traces

VALID_SERVICE = "fuzz-valid"
PATHS = {"/v1/traces": Signal.TRACES, "/v1/metrics": Signal.METRICS, "/v1/logs": Signal.LOGS}
GRPC_METHODS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
BUILDERS = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}


@dataclass(frozen=True)
class SinkConfig:
    #: unused; the sink takes no settings
    label: str = ""


class CountingSink(Sink):
    """Counts only items of the valid traffic (resource service.name == fuzz-valid)."""

    def __init__(self, settings: Any, config: Any) -> None:
        super().__init__()
        self.valid = dict.fromkeys(Signal, 0)
        self.lock = threading.Lock()

    def _count(self, signal: Signal, batch: Any) -> None:
        resources = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics",
                     Signal.LOGS: "resource_logs"}[signal]
        for envelope in getattr(batch, resources):
            names = [kv.value.string_value for kv in envelope.resource.attributes if kv.key == "service.name"]
            if names == [VALID_SERVICE]:
                single = type(batch)()
                getattr(single, resources).append(envelope)
                with self.lock:
                    self.valid[signal] += count_items(signal, single)

    async def consume_traces(self, batch: Any) -> None:
        self._count(Signal.TRACES, batch)

    async def consume_metrics(self, batch: Any) -> None:
        self._count(Signal.METRICS, batch)

    async def consume_logs(self, batch: Any) -> None:
        self._count(Signal.LOGS, batch)


SINKS: list[CountingSink] = []


def create_sink(settings: Any, config: Any) -> CountingSink:
    sink = CountingSink(settings, config)
    SINKS.append(sink)
    return sink


sink_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [
    Factory("fuzzsink", Kind.EXPORTER, SinkConfig, create_traces=create_sink, create_metrics=create_sink,
            create_logs=create_sink)]))

CONFIG = {
    "receivers": {"otlp": {"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1},
        "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 1 << 20}}}},
    "exporters": {"fuzzsink": None},
    "service": {"telemetry": {"metrics": {"address": ""}},
                "pipelines": {s.value: {"receivers": ["otlp"], "exporters": ["fuzzsink"]} for s in Signal}},
}


@dataclass
class Gateway:
    grpc_address: str
    http_host: str
    http_port: int
    sinks: list[CountingSink]
    loop: asyncio.AbstractEventLoop

    def valid_items(self, signal: Signal) -> int:
        return sum(sink.valid[signal] for sink in self.sinks)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    SINKS.clear()
    registry = load_registry([sink_plugin])
    service = Service(build_config(CONFIG, registry), registry)
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
    receiver = service.graph.find(Kind.RECEIVER, "otlp")
    host, port = receiver.http_address.rsplit(":", 1)
    yield Gateway(receiver.grpc_address, host, int(port), list(SINKS), loop)
    asyncio.run_coroutine_threadsafe(service.shutdown(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def http_post(gw: Gateway, path: str, body: bytes, headers: dict[str, str], method: str = "POST") -> int:
    connection = http.client.HTTPConnection(gw.http_host, gw.http_port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def grpc_call(channel: grpc.Channel, signal: Signal, body: bytes,
              compression: grpc.Compression | None = None) -> grpc.StatusCode:
    call = channel.unary_unary(GRPC_METHODS[signal], request_serializer=None, response_deserializer=None)
    try:
        call(body, timeout=10, compression=compression)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def valid_request(signal: Signal) -> bytes:
    return BUILDERS[signal](3, service=VALID_SERVICE).SerializeToString()


def mutant_base(signal: Signal) -> bytes:
    return BUILDERS[signal](3, service="fuzz-mutant").SerializeToString()


signals = st.sampled_from(list(Signal))


@st.composite
def bad_protobuf(draw: st.DrawFn) -> tuple[Signal, bytes]:
    signal = draw(signals)
    base = mutant_base(signal)
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "appended"]))
    if kind == "random":
        return signal, draw(st.binary(min_size=1, max_size=2048))
    if kind == "truncated":
        return signal, base[:draw(st.integers(1, len(base) - 1))]
    if kind == "flipped":
        data = bytearray(base)
        for index in draw(st.lists(st.integers(0, len(base) - 1), min_size=1, max_size=8)):
            data[index] ^= draw(st.integers(1, 255))
        return signal, bytes(data)
    return signal, base + draw(st.binary(min_size=1, max_size=64))


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars,
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=12), children, max_size=4), max_leaves=20)
otlp_keys = st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "resourceLogs",
                             "logRecords", "resourceMetrics", "metrics", "body", "attributes", "kind", "x"])


@st.composite
def bad_json(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "value", "shaped"]))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    document = draw(st.dictionaries(otlp_keys, json_values, min_size=1, max_size=4))
    return json.dumps(document).encode()


FAST = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
CLIENT_ERRORS_HTTP = {200, 400, 404, 405, 413, 415}
CLIENT_ERRORS_GRPC = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


class Traffic:
    """Valid requests sent between the bad ones, to prove the bad ones cost nothing else."""

    def __init__(self, gw: Gateway, channel: grpc.Channel) -> None:
        self.gw, self.channel = gw, channel
        self.sent = dict.fromkeys(Signal, 0)

    def send(self, signal: Signal, use_grpc: bool) -> None:
        if use_grpc:
            assert grpc_call(self.channel, signal, valid_request(signal)) is grpc.StatusCode.OK
        else:
            path = next(p for p, s in PATHS.items() if s is signal)
            status = http_post(self.gw, path, valid_request(signal), {"Content-Type": "application/x-protobuf"})
            assert status == 200
        self.sent[signal] += 3

    def assert_all_arrived(self) -> None:
        assert sum(self.sent.values()) > 0
        for signal in Signal:
            # exactly: the receivers forward synchronously, so everything acknowledged has reached the sink
            assert self.gw.valid_items(signal) == self.sent[signal], signal


@pytest.fixture(scope="module")
def traffic(gateway: Gateway) -> Iterator[Traffic]:
    channel = grpc.insecure_channel(gateway.grpc_address)
    yield Traffic(gateway, channel)
    channel.close()


def test_grpc_rejects_bad_protobuf_and_keeps_serving(gateway: Gateway, traffic: Traffic) -> None:
    @FAST
    @given(bad_protobuf(), st.booleans())
    def check(case: tuple[Signal, bytes], gzip_it: bool) -> None:
        signal, body = case
        compression = grpc.Compression.Gzip if gzip_it else None
        assert grpc_call(traffic.channel, signal, body, compression) in CLIENT_ERRORS_GRPC
        traffic.send(signal, use_grpc=True)

    check()
    traffic.assert_all_arrived()


def test_http_rejects_bad_protobuf_json_and_compression_and_keeps_serving(gateway: Gateway,
                                                                          traffic: Traffic) -> None:
    content_types = st.sampled_from(["application/x-protobuf", "application/json", "text/plain", "",
                                     "application/json; charset=utf-8", "application/x-protobuf; x=1"])
    encodings = st.sampled_from(["", "gzip", "deflate", "br", "gzip-truncated", "gzip-lie"])

    @FAST
    @given(st.one_of(bad_protobuf(), st.tuples(signals, bad_json())), content_types, encodings)
    def check(case: tuple[Signal, bytes], content_type: str, encoding: str) -> None:
        signal, body = case
        headers = {"Content-Type": content_type} if content_type else {}
        if encoding in ("gzip", "gzip-truncated"):
            body = gzip.compress(body)
            if encoding == "gzip-truncated":
                body = body[: max(1, len(body) // 2)]
            headers["Content-Encoding"] = "gzip"
        elif encoding == "deflate":
            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        elif encoding == "gzip-lie":
            headers["Content-Encoding"] = "gzip"  # claims gzip, is not
        elif encoding:
            headers["Content-Encoding"] = encoding
        path = next(p for p, s in PATHS.items() if s is signal)
        assert http_post(gateway, path, body, headers) in CLIENT_ERRORS_HTTP
        traffic.send(signal, use_grpc=False)

    check()
    traffic.assert_all_arrived()


def test_http_rejects_bad_paths_methods_and_sizes_and_keeps_serving(gateway: Gateway, traffic: Traffic) -> None:
    @FAST
    @given(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST"]),
           st.one_of(st.sampled_from(list(PATHS)), st.text(alphabet="/abcv1.%?&=", min_size=1, max_size=30)
                     .map(lambda p: "/" + p.lstrip("/"))),
           st.sampled_from([0, 10, (1 << 20) + 1]))
    def check(method: str, path: str, size: int) -> None:
        status = http_post(gateway, path, b"\x00" * size, {"Content-Type": "application/x-protobuf"}, method)
        assert status in CLIENT_ERRORS_HTTP
        traffic.send(Signal.LOGS, use_grpc=False)

    check()
    traffic.assert_all_arrived()
