"""Process-level durability scenarios shared by tests/test_durability.py (short, deterministic) and
tests/faults/ (randomized, long): real gateway processes, a real gRPC client, an OTLP sink counting spans by id.

Imported by path, like gwproc: ``sys.path.insert(0, <tests dir>)``.
"""

from __future__ import annotations

import asyncio
import collections
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from gwproc import GatewayProcess, free_port
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from gateway.component import Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

SPANS_PER_REQUEST = 40


def gateway_config(tmp_path: Path, sink: OtlpSink, ports: dict[str, int], *, tail_sampling: bool,
                   storage_dir: Path | None = None, num_consumers: int = 4, decision_wait: str = "1s") -> Path:
    storage_dir = storage_dir or tmp_path / "storage"
    processors = (f"processors:\n"
                  f"  tail_sampling:\n"
                  f"    decision_wait: {decision_wait}\n"
                  f"    storage: file_storage/sampling\n"
                  f"    policies: [{{name: all, type: always_sample}}]\n") if tail_sampling else ""
    config = tmp_path / "gateway.yaml"
    config.write_text(processors + textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/queue: {{directory: "{storage_dir}", create_directory: true}}
          file_storage/sampling: {{directory: "{storage_dir}", create_directory: true}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{storage: file_storage/queue, queue_size: 100000000, sizer: bytes,
                            num_consumers: {num_consumers}}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check, file_storage/queue, file_storage/sampling]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], {"processors: [tail_sampling], " if tail_sampling else ""}exporters: [otlp]}}
    """))
    return config


def new_ports() -> dict[str, int]:
    return {name: free_port() for name in ("grpc", "health", "metrics")}


def span_ids(request: ExportTraceServiceRequest) -> list[bytes]:
    return [s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


@dataclass
class Sender:
    """Sends requests over gRPC from a thread until told to stop or the gateway stops answering."""

    port: int
    acknowledged: list[bytes] = field(default_factory=list)
    requests: int = 0
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def send(self, request: ExportTraceServiceRequest, timeout: float = 10) -> grpc.StatusCode:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            return self._export(TraceServiceStub(channel), request, timeout)

    def _export(self, stub: TraceServiceStub, request: ExportTraceServiceRequest, timeout: float) -> grpc.StatusCode:
        try:
            stub.Export(request, timeout=timeout)
        except grpc.RpcError as exc:
            self.refusals[exc.code().name] += 1
            return exc.code()
        self.acknowledged.extend(span_ids(request))
        self.requests += 1
        return grpc.StatusCode.OK

    def run(self, until: Callable[[Sender], bool] = lambda s: False, limit: int = 100_000) -> None:
        """Send until ``until(self)`` or ``stop`` or a send fails with the gateway gone (UNAVAILABLE after kill)."""
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = TraceServiceStub(channel)
            for _ in range(limit):
                if self.stop.is_set() or until(self):
                    return
                code = self._export(stub, make_traces(SPANS_PER_REQUEST, spans_per_trace=8), timeout=10)
                if code is not grpc.StatusCode.OK and self.stop.is_set():
                    return


def delivered(sink: OtlpSink) -> collections.Counter[bytes]:
    return collections.Counter(s.span_id for s in sink.spans())


async def wait_for_all(sink: OtlpSink, expected: list[bytes], timeout: float, gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + timeout
    want = set(expected)
    while True:
        missing = want - set(delivered(sink))
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} of {len(want)} acknowledged spans never arrived:\n{gateway.log()}")
        await asyncio.sleep(0.1)


def report(sink: OtlpSink, expected: list[bytes]) -> tuple[int, int]:
    """(lost, duplicated) spans among ``expected``; printed for the log of the run."""
    copies = delivered(sink)
    lost = sum(1 for i in set(expected) if not copies[i])
    duplicates = sum(copies[i] - 1 for i in set(expected) if copies[i] > 1)
    print(f"acknowledged {len(set(expected))} spans; lost {lost}; duplicated {duplicates}")
    return lost, duplicates


async def kill_during_ingestion(tmp_path: Path, *, after_requests: int, extra_delay: float = 0.0,
                                tail_sampling: bool = True) -> tuple[int, int]:
    """SIGKILL a gateway (tail_sampling with storage -> persistent queue) while a client sends, after
    ``after_requests`` acknowledged requests plus ``extra_delay`` seconds; restart; every acknowledged span must
    arrive. Returns (lost, duplicated)."""
    sink = OtlpSink()
    await sink.start()
    ports = new_ports()
    config = gateway_config(tmp_path, sink, ports, tail_sampling=tail_sampling)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(config, ports, log).start()
    sender = Sender(ports["grpc"])
    try:
        await asyncio.to_thread(gateway.wait_ready)
        thread = threading.Thread(target=sender.run, daemon=True)
        thread.start()
        while sender.requests < after_requests:
            if not thread.is_alive():
                raise AssertionError(f"sender stopped early: {sender.refusals}\n{gateway.log()}")
            await asyncio.sleep(0.001)
        if extra_delay:
            await asyncio.sleep(extra_delay)
        gateway.kill()
        sender.stop.set()
        await asyncio.to_thread(thread.join, 30)
        acknowledged = list(sender.acknowledged)
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        await wait_for_all(sink, acknowledged, 60, gateway)
        lost, duplicates = report(sink, acknowledged)
        assert gateway.stop() == 0
        return lost, duplicates
    finally:
        sender.stop.set()
        gateway.kill()
        await sink.stop()


async def kill_during_replay(tmp_path: Path, *, requests: int = 150, after_spans: int = 1) -> tuple[int, int]:
    """A persistent queue holds ``requests`` (backend down, then SIGKILL); the restarted gateway is killed again
    while it replays (after the backend got ``after_spans``); a third start delivers everything."""
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(100_000, message="backend down")
    ports = new_ports()
    config = gateway_config(tmp_path, sink, ports, tail_sampling=False, num_consumers=1)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(config, ports, log).start()
    sender = Sender(ports["grpc"])
    try:
        await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(sender.run, lambda s: s.requests >= requests)
        assert sender.requests == requests, sender.refusals
        gateway.kill()
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        sink.clear()  # the backend is back
        deadline = time.monotonic() + 30
        while sink.item_count(Signal.TRACES) < after_spans:
            assert time.monotonic() < deadline, gateway.log()
            await asyncio.sleep(0.002)
        gateway.kill()  # mid-replay
        arrived_before_kill = sink.item_count(Signal.TRACES)
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        await wait_for_all(sink, sender.acknowledged, 60, gateway)
        print(f"killed during replay after {arrived_before_kill} of {len(sender.acknowledged)} spans had arrived")
        assert arrived_before_kill < len(sender.acknowledged), "the replay finished before the kill"
        lost, duplicates = report(sink, sender.acknowledged)
        assert gateway.stop() == 0
        return lost, duplicates
    finally:
        gateway.kill()
        await sink.stop()
