"""What a sender was told OK reaches the backend: real gateway processes, real gRPC senders, real SIGKILL.

Every span carries a unique span id. Senders behave as SDKs do: they retry a request until it is answered OK,
and only then count its spans as acknowledged. The backend is an OTLP server in this process that records
every span it takes. After the faults, the test waits until every acknowledged span id has arrived: zero lost
is required; duplicates (at-least-once delivery) are counted and printed.

`make test` runs one seed of each randomized case; `make faults` runs ``OTELGW_FAULT_RUNS`` (20) seeds.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import struct
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gateway.component import Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent.parent))
from gwproc import GatewayProcess, free_port

SEEDS = range(int(os.environ.get("OTELGW_FAULT_RUNS", "1")))
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Sender(threading.Thread):
    """Sends requests of ``spans`` spans with ids (sender, sequence) and retries each until it is answered OK."""

    def __init__(self, endpoint: str, index: int, stop: threading.Event, spans: int = 50,
                 name_of: dict[int, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.index, self.stop, self.spans = endpoint, index, stop, spans
        self.name_of = name_of or {}
        self.acknowledged: set[bytes] = set()
        self.refused: dict[str, int] = collections.Counter()
        self.sequence = 0

    def request(self) -> ExportTraceServiceRequest:
        request = make_traces(self.spans, service=f"sender-{self.index}")
        trace_id = random.randbytes(16)
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.trace_id = trace_id
            span.span_id = struct.pack(">II", self.index + 1, self.sequence)
            span.name = self.name_of.get(self.sequence, span.name)
            self.sequence += 1
        return request

    def run(self) -> None:
        with grpc.insecure_channel(self.endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                         response_deserializer=ExportTraceServiceResponse.FromString)
            pending: ExportTraceServiceRequest | None = None
            while not self.stop.is_set():
                pending = pending or self.request()
                try:
                    export(pending, timeout=10)
                except grpc.RpcError as exc:
                    self.refused[exc.code().name] += 1
                    if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                        pending = None  # as an SDK: an invalid request is dropped, not retried
                    time.sleep(0.05)
                    continue
                self.acknowledged.update(s.span_id for s in pending.resource_spans[0].scope_spans[0].spans)
                pending = None


def gateway_config(tmp_path: Path, ports: dict[str, int], backend: str, *, persistent: bool = True) -> Path:
    storage = "storage: file_storage/queue, " if persistent else ""
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/queue: {{directory: "{tmp_path / 'queue'}", create_directory: true}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        processors:
          batch: {{send_batch_size: 400, timeout: 100ms}}
        exporters:
          otlp:
            endpoint: {backend}
            tls: {{insecure: true}}
            sending_queue: {{{storage}queue_size: 100000000, sizer: bytes, num_consumers: 4}}
            retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check, file_storage/queue]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
    """))
    return config


async def wait_for_every_span(sink: OtlpSink, expected: set[bytes], timeout: float) -> set[bytes]:
    """Wait until the backend holds every span id of ``expected``; return those still missing then."""
    deadline = time.monotonic() + timeout
    while True:
        missing = expected - {span.span_id for span in sink.spans()}
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.1)


async def flap(sink: OtlpSink, stop: asyncio.Event, rng: random.Random) -> None:
    """The backend goes down for a few requests now and then."""
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.1, 0.4))
        sink.fail_next(rng.randint(1, 6), message="backend flapping")


async def test_sigkill_with_batch_before_a_persistent_queue_loses_nothing_acknowledged(tmp_path: Path) -> None:
    for seed in SEEDS:
        await sigkill_run(tmp_path / f"run-{seed}", random.Random(seed))


async def sigkill_run(tmp_path: Path, rng: random.Random) -> None:
    tmp_path.mkdir()
    sink = OtlpSink()
    await sink.start()
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = gateway_config(tmp_path, ports, sink.grpc_endpoint)
    log = tmp_path / "gateway.log"
    stop_senders, stop_flapping = threading.Event(), asyncio.Event()
    senders = [Sender(f"127.0.0.1:{ports['grpc']}", i, stop_senders) for i in range(4)]
    flapping = asyncio.create_task(flap(sink, stop_flapping, rng))
    gateway = GatewayProcess(config, ports, log).start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        for sender in senders:
            sender.start()
        kills = rng.randint(1, 3)
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 1.5))  # ingesting, batching, queueing, replaying
            gateway.kill()  # SIGKILL: no drain, no flush
            gateway = GatewayProcess(config, ports, log).start()
            await asyncio.to_thread(gateway.wait_ready)
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        deadline = time.monotonic() + 60  # on a busy machine, keep going until there is enough to count
        while sum(len(s.acknowledged) for s in senders) < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop_senders.set()
        for sender in senders:
            await asyncio.to_thread(sender.join, 30)
        stop_flapping.set()
        await flapping
        acknowledged = set().union(*(s.acknowledged for s in senders))
        assert len(acknowledged) >= 1000, "the senders got too little through to test anything"
        missing = await wait_for_every_span(sink, acknowledged, 60)
        received = collections.Counter(span.span_id for span in sink.spans())
        duplicates = sum(n - 1 for n in received.values())
        print(f"{kills} SIGKILLs: {len(acknowledged)} spans acknowledged, {len(missing)} lost, "
              f"{duplicates} duplicates delivered")
        assert not missing, f"{len(missing)} acknowledged spans never reached the backend\n{gateway.log()}"
        assert gateway.stop() == 0
    finally:
        stop_senders.set()
        stop_flapping.set()
        gateway.kill()
        await sink.stop()


async def test_one_senders_invalid_span_costs_no_other_sender_anything(tmp_path: Path) -> None:
    """The backend refuses any request holding the poison span: bisection delivers everything else."""
    sink = OtlpSink()
    await sink.start()
    sink.refuse_when(lambda batch: "poison span" if any(
        span.name == "poison" for rs in batch.resource_spans for ss in rs.scope_spans  # type: ignore[union-attr]
        for span in ss.spans) else None)
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = gateway_config(tmp_path, ports, sink.grpc_endpoint, persistent=False)
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start()
    stop = threading.Event()
    good = Sender(f"127.0.0.1:{ports['grpc']}", 0, stop, spans=50)
    bad = Sender(f"127.0.0.1:{ports['grpc']}", 1, stop, spans=5, name_of={7: "poison"})
    try:
        await asyncio.to_thread(gateway.wait_ready)
        good.start()
        bad.start()
        deadline = time.monotonic() + 30
        while len(good.acknowledged) < 600 or len(bad.acknowledged) < 20:
            assert time.monotonic() < deadline, "the senders got too little through"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.to_thread(good.join, 30)
        await asyncio.to_thread(bad.join, 30)
        poison_id = struct.pack(">II", 2, 7)
        expected = (good.acknowledged | bad.acknowledged) - {poison_id}
        assert not await wait_for_every_span(sink, expected, 30)
        assert poison_id not in {span.span_id for span in sink.spans()}
        assert gateway.metric("otelgw_component_dropped_items_total", component="otlp", reason="rejected") == 1
        assert "not retryable" in gateway.log()
        assert gateway.stop() == 0
    finally:
        stop.set()
        gateway.kill()
        await sink.stop()


async def test_shutdown_says_what_it_could_not_deliver(tmp_path: Path) -> None:
    """An unreachable backend and an in-memory queue: the stop is logged as a loss, with the count, and fails."""
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(10**6, message="backend down")
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = gateway_config(tmp_path, ports, sink.grpc_endpoint, persistent=False)
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start()
    stop = threading.Event()
    sender = Sender(f"127.0.0.1:{ports['grpc']}", 0, stop, spans=10)
    try:
        await asyncio.to_thread(gateway.wait_ready)
        sender.start()
        while len(sender.acknowledged) < 100:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.to_thread(sender.join, 30)
        assert await asyncio.to_thread(gateway.stop, 60) == 1
        log = gateway.log()
        assert '"msg": "gateway stopped; items were lost during shutdown"' in log
        lost = int(log.split('"lost_items": ')[1].split("}")[0].split(",")[0])
        assert lost == len(sender.acknowledged)  # what the queue held, every item of it, counted
        assert sink.item_count(Signal.TRACES) == 0
    finally:
        stop.set()
        gateway.kill()
        await sink.stop()
