"""The dns resolver: real getaddrinfo on ``localhost``, and injected IP lists routing to real gRPC servers that
share one port on distinct loopback addresses (Linux routes all of 127.0.0.0/8 to lo), as pods behind a
headless Service do."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway._host.service import Service
from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import RetryableError, status_for
from gateway.testing import settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.load_balancing.exporter import LoadBalancingExporter
from plugins.exporters.load_balancing.factory import factory
from plugins.exporters.load_balancing.resolver import format_endpoint
from plugins.exporters.load_balancing.ring import HashRing

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
HOSTNAME = "samplers.test"
EXPORT = f"/{SERVICE}/Export"


def tid(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=16).digest()


def traces_request(numbers: range, part: int) -> ExportTraceServiceRequest:
    """Span ``part`` of each trace in ``numbers`` (its span id encodes both), over two resources."""
    out = ExportTraceServiceRequest()
    for service, parity in (("a", 0), ("b", 1)):
        rs = out.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        rs.scope_spans.add().spans.extend(
            Span(trace_id=tid(n), span_id=((n + 1) * 1000 + part).to_bytes(8, "big"), name=f"op-{part}")
            for n in numbers if n % 2 == parity)
    return out


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class LoopbackSink:
    """A TraceService server on one loopback address and port (OtlpSink always binds 127.0.0.1:0)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.requests: list[ExportTraceServiceRequest] = []
        self._server: grpc.aio.Server | None = None

    @property
    def endpoint(self) -> str:
        return format_endpoint(self.host, self.port)

    async def start(self, port: int = 0) -> None:
        async def export(request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            self.requests.append(request)
            return ExportTraceServiceResponse()

        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self.port = server.add_insecure_port(self.endpoint.rsplit(":", 1)[0] + f":{port}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)

    def span_parts(self) -> dict[bytes, list[int]]:
        """trace id → the part numbers of its spans received here."""
        out: dict[bytes, list[int]] = defaultdict(list)
        for request in self.requests:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out[s.trace_id].append(int.from_bytes(s.span_id, "big") % 1000)
        return out

    def span_count(self) -> int:
        return sum(len(parts) for parts in self.span_parts().values())


async def sinks_on_one_port(hosts: list[str]) -> list[LoopbackSink]:
    sinks = [LoopbackSink(host) for host in hosts]
    await sinks[0].start()
    for sink in sinks[1:]:
        await sink.start(sinks[0].port)
    return sinks


class FakeDns:
    """An injectable resolver: answers ``answer`` (IPs, or an exception to raise), counting the questions."""

    def __init__(self, answer: list[str] | BaseException) -> None:
        self.answer = answer
        self.calls = 0
        self.questions: set[tuple[str, int]] = set()
        self.hang = False

    async def __call__(self, hostname: str, port: int) -> Iterable[str]:
        self.calls += 1
        self.questions.add((hostname, port))
        if self.hang:
            await asyncio.sleep(3600)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return list(self.answer)

    async def settle(self) -> None:
        """Wait until a resolution that started after now has finished (the next one has begun)."""
        target = self.calls + 2
        await wait_for(lambda: self.calls >= target)


def dns_exporter(resolve: Any, port: int, telemetry: Telemetry | None = None, hostname: str = HOSTNAME,
                 **dns: Any) -> LoadBalancingExporter:
    config = decode(factory.create_default_config(), {
        "resolver": {"dns": {"hostname": hostname, "port": port, "interval": "20ms", **dns}},
        "protocol": {"otlp": {"tls": {"insecure": True}, "timeout": "2s"}}})
    assert validate_tree(config) == []
    return LoadBalancingExporter(settings_for(Kind.EXPORTER, "load_balancing", Signal.TRACES, telemetry),
                                 config, resolve)


def owner_of(sinks: list[LoopbackSink]) -> dict[bytes, set[str]]:
    seen: dict[bytes, set[str]] = defaultdict(set)
    for sink in sinks:
        for trace_id in sink.span_parts():
            seen[trace_id].add(sink.endpoint)
    return seen


async def send(exporter: LoadBalancingExporter, numbers: range, parts: range) -> None:
    for part in parts:
        await exporter.consume_traces(traces_request(numbers, part))


async def test_backends_follow_the_resolved_ips_and_only_a_dropped_backends_traces_move() -> None:
    sinks = await sinks_on_one_port(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    a, b, c = sinks
    port = a.port
    dns = FakeDns(["127.0.0.4", "127.0.0.2", "127.0.0.3", "127.0.0.2"])  # unsorted, duplicated: as DNS answers
    exporter = dns_exporter(dns, port)
    await exporter.start(None)
    try:
        full = HashRing(s.endpoint for s in sinks)
        assert exporter.ring is not None and exporter.ring.endpoints == [s.endpoint for s in sinks]
        assert list(exporter.backends) == [s.endpoint for s in sinks]
        assert dns.questions == {(HOSTNAME, port)}
        # 60 traces, parts 0-1, routed on the full ring: whole, each at the sink the Collector's ring names.
        await send(exporter, range(60), range(2))
        await wait_for(lambda: sum(s.span_count() for s in sinks) == 120)
        seen = owner_of(sinks)
        assert all(where == {full.endpoint_for(t)} for t, where in seen.items()) and len(seen) == 60
        assert all(s.span_parts() for s in sinks)
        before_c = c.span_count()

        dropped = exporter.backends[c.endpoint]
        dns.answer = ["127.0.0.3", "127.0.0.2"]
        await dns.settle()
        assert list(exporter.backends) == [a.endpoint, b.endpoint]
        reduced = HashRing([a.endpoint, b.endpoint])
        with pytest.raises(RetryableError, match="shutting down"):  # the removed backend was shut down
            await dropped.consume_traces(traces_request(range(1), 9))
        # Parts 2-3 of the old traces, and parts 0-3 of 30 new ones.
        await send(exporter, range(60), range(2, 4))
        await send(exporter, range(60, 90), range(4))
        await wait_for(lambda: sum(s.span_count() for s in sinks) == 120 + 120 + 120)
        assert c.span_count() == before_c  # nothing more for the dropped backend
        for n in range(60):
            where = {s.endpoint: sorted(s.span_parts().get(tid(n), [])) for s in sinks}
            if full.endpoint_for(tid(n)) != c.endpoint:  # not the dropped backend's: did not move, still whole
                assert where[full.endpoint_for(tid(n))] == [0, 1, 2, 3]
            else:  # the dropped backend's: the rest went to its successor on the ring
                assert where[c.endpoint] == [0, 1] and where[reduced.endpoint_for(tid(n))] == [2, 3]
        for n in range(60, 90):
            parts = {s.endpoint: sorted(s.span_parts().get(tid(n), [])) for s in sinks}
            assert {e: p for e, p in parts.items() if p} == {reduced.endpoint_for(tid(n)): [0, 1, 2, 3]}

        dns.answer = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]  # it comes back: routing returns
        await dns.settle()
        assert list(exporter.backends) == [s.endpoint for s in sinks]
        total = sum(s.span_count() for s in sinks)
        await send(exporter, range(90, 150), range(2))
        await wait_for(lambda: sum(s.span_count() for s in sinks) == total + 120)
        seen = owner_of(sinks)
        assert all(seen[tid(n)] == {full.endpoint_for(tid(n))} for n in range(90, 150))
        assert c.span_count() > before_c
    finally:
        await exporter.shutdown()
        for sink in sinks:
            await sink.stop()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_failed_or_empty_resolution_keeps_the_backends_and_warns_once_per_error() -> None:
    [sink] = await sinks_on_one_port(["127.0.0.2"])
    dns = FakeDns(["127.0.0.2"])
    telemetry = Telemetry()
    exporter = dns_exporter(dns, sink.port, telemetry, timeout="100ms")
    records = Records()
    logger = logging.getLogger("otelgw.exporter.load_balancing")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)

    def sample(name: str, **labels: str) -> float | None:
        value = telemetry.registry.get_sample_value(name, {"exporter": "load_balancing", "resolver": "dns",
                                                           **labels})
        return value

    await exporter.start(None)
    try:
        backend = exporter.backends[sink.endpoint]
        dns.answer = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        await dns.settle()
        await dns.settle()  # several failures...
        dns.answer = []
        await dns.settle()
        dns.hang = True
        await dns.settle()
        assert exporter.backends == {sink.endpoint: backend}  # ...and still the same, running backend
        await send(exporter, range(10), range(1))
        await wait_for(lambda: sink.span_count() == 10)
        warnings = [r for r in records.records if r.levelno == logging.WARNING]
        assert [r.error for r in warnings] == [  # type: ignore[attr-defined]
            "gaierror: [Errno -2] Name or service not known", "LookupError: the name resolved to no address",
            "no answer within 0.1s"]  # once per error, not once per interval
        assert {r.hostname for r in warnings} == {HOSTNAME}  # type: ignore[attr-defined]
        assert (sample("otelgw_loadbalancer_num_resolutions_total", outcome="failure") or 0) >= 5
        assert sample("otelgw_loadbalancer_num_resolutions_total", outcome="success") == 1
        assert sample("otelgw_loadbalancer_num_backends") == 1
        dns.hang = False
        dns.answer = ["127.0.0.2"]
        await dns.settle()
        assert [r.getMessage() for r in records.records][-1] == "Resolving the backends works again."
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
        await exporter.shutdown()
        await sink.stop()


async def test_without_backends_requests_are_refused_as_retryable() -> None:
    dns = FakeDns(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    exporter = dns_exporter(dns, 4317)
    await exporter.start(None)  # not fatal
    try:
        assert exporter.ring is None and exporter.backends == {}
        with pytest.raises(RetryableError, match=f"^no backend resolved for {HOSTNAME}$") as info:
            await send(exporter, range(3), range(1))
        assert status_for(info.value).grpc_code is grpc.StatusCode.UNAVAILABLE
    finally:
        await exporter.shutdown()
    assert exporter._task is None


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


async def test_the_sender_retries_until_a_backend_appears_and_nothing_is_lost(tmp_path: Path) -> None:
    [sink] = await sinks_on_one_port(["127.0.0.3"])
    service = Service.from_files([write(tmp_path, f"""
        receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
        exporters:
          loadbalancing:
            protocol: {{otlp: {{tls: {{insecure: true}}}}}}
            resolver: {{dns: {{hostname: {HOSTNAME}, port: {sink.port}, interval: 20ms}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines: {{traces: {{receivers: [otlp], exporters: [loadbalancing]}}}}
    """)])
    dns = FakeDns([])
    service.graph.find(Kind.EXPORTER, "loadbalancing").resolve = dns
    await service.start()
    channel = grpc.aio.insecure_channel(service.graph.find(Kind.RECEIVER, "otlp").grpc_address)
    try:
        export = channel.unary_unary(EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                     response_deserializer=lambda b: b)
        batch = traces_request(range(20), 0)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await export(batch, timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert info.value.details() == f"no backend resolved for {HOSTNAME}"
        dns.answer = ["127.0.0.3"]
        await dns.settle()
        await export(batch, timeout=10)  # the sender's retry
        await wait_for(lambda: sink.span_count() == 20)
        await asyncio.sleep(0.1)
        assert sink.span_count() == 20 and sorted(sink.span_parts()) == sorted(tid(n) for n in range(20))
    finally:
        await channel.close()
        assert await service.shutdown() == []
        await sink.stop()


async def test_real_dns_resolves_localhost_to_a_real_sink() -> None:
    sink = OtlpSink()
    await sink.start()
    extra: list[LoopbackSink] = []
    resolved = {str(i[4][0]) for i in socket.getaddrinfo("localhost", sink.grpc_port, type=socket.SOCK_STREAM)}
    for ip in sorted(resolved - {"127.0.0.1"}):  # e.g. ::1 on hosts whose /etc/hosts lists it for localhost
        extra.append(LoopbackSink(ip))
        await extra[-1].start(sink.grpc_port)
    exporter = dns_exporter(None, sink.grpc_port, hostname="localhost")  # the default resolver: getaddrinfo
    await exporter.start(None)
    try:
        assert exporter.ring is not None
        assert exporter.ring.endpoints == sorted(format_endpoint(ip, sink.grpc_port) for ip in resolved)
        await send(exporter, range(30), range(3))
        await wait_for(lambda: sink.item_count(Signal.TRACES) + sum(s.span_count() for s in extra) == 90)
    finally:
        await exporter.shutdown()
        await sink.stop()
        for other in extra:
            await other.stop()


async def test_shutdown_stops_resolving_and_every_backend() -> None:
    sinks = await sinks_on_one_port(["127.0.0.2", "127.0.0.3"])
    dns = FakeDns(["127.0.0.2", "127.0.0.3"])
    exporter = dns_exporter(dns, sinks[0].port)
    await exporter.start(None)
    backends = list(exporter.backends.values())
    await dns.settle()
    await exporter.shutdown()
    calls = dns.calls
    await asyncio.sleep(0.1)
    assert dns.calls == calls  # no more resolutions
    for backend in backends:
        with pytest.raises(RetryableError, match="shutting down"):
            await backend.consume_traces(traces_request(range(1), 0))
    for sink in sinks:
        await sink.stop()


async def test_hot_reload_keeps_an_unchanged_dns_exporter_running(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()

    def config(interval: str) -> str:
        return write(tmp_path, f"""
            receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
            exporters:
              loadbalancing:
                protocol: {{otlp: {{tls: {{insecure: true}}}}}}
                resolver: {{dns: {{hostname: localhost, port: {sink.grpc_port}, interval: {interval}}}}}
            service:
              telemetry: {{metrics: {{address: ""}}}}
              pipelines: {{traces: {{receivers: [otlp], exporters: [loadbalancing]}}}}
        """)

    service = Service.from_files([config("50ms")])
    await service.start()
    try:
        exporter = service.graph.find(Kind.EXPORTER, "loadbalancing")
        task = exporter._task
        assert (await service.reload()).ok
        assert service.graph.find(Kind.EXPORTER, "loadbalancing") is exporter and not task.done()
        config("60ms")
        result = await service.reload()
        assert result.ok and "exporter loadbalancing (traces)" in result.stopped
        replacement = service.graph.find(Kind.EXPORTER, "loadbalancing")
        assert replacement is not exporter and task.done() and not replacement._task.done()
        await replacement.consume_traces(traces_request(range(5), 0))
        await wait_for(lambda: sink.item_count(Signal.TRACES) == 5)
    finally:
        assert await service.shutdown() == []
        await sink.stop()


def test_static_backends_are_counted() -> None:
    telemetry = Telemetry()
    config = decode(factory.create_default_config(), {"resolver": {"static": {"hostnames": ["a:1", "b:1", "a:1"]}}})
    exporter = LoadBalancingExporter(settings_for(Kind.EXPORTER, "load_balancing/x", Signal.TRACES, telemetry),
                                     config)
    labels = {"exporter": "load_balancing/x", "resolver": "static"}
    assert telemetry.registry.get_sample_value("otelgw_loadbalancer_num_backends", labels) == 2
    assert telemetry.registry.get_sample_value("otelgw_loadbalancer_num_resolutions_total",
                                               {**labels, "outcome": "success"}) == 1
    assert list(exporter.backends) == ["a:1", "b:1"]

