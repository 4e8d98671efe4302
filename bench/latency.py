"""Benchmark: the latency the gateway adds at half load, p50 and p99, with and without the batch processor.

For each pipeline (OTLP/gRPC in → [batch] → OTLP/gRPC out), in one run:
1. capacity: the load generator (``bench.loadgen``, core 1) sends flat out; spans per second reaching the sink;
2. half load: requests are sent at half that rate, on a fixed schedule (an open loop: a slow answer does not
   slow the schedule), each with its number in its first span id. The sink (this process, core 1) notes when each
   request's spans arrive; the added latency of a request is that time minus the time it was sent, so it holds
   both gRPC hops, the gateway's work and, with batch, the wait for the batch to fill (``send_batch_size`` 8192
   or ``timeout`` 200 ms).

The gateway is pinned to core 0. Requests are ``bench.workload``'s: 500 spans of about 272 B.

    python -m bench.latency [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grpc import aio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.passthrough import BATCH, EXPORT, CountingSink, free_port, gateway_config, heading, wait_for_port
from bench.workload import make_payloads

SPANS = 500


class ArrivalSink(CountingSink):
    """The counting sink, also noting when each numbered request's spans arrive (envelopes only are read)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[int, float] = {}

    def record(self, batch: ExportTraceServiceRequest, now: float) -> None:
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                self.spans += len(ss.spans)
                if ss.spans:
                    self.arrived.setdefault(int.from_bytes(ss.spans[0].span_id, "big"), now)


def numbered(payloads: list[bytes], count: int) -> list[bytes]:
    """``count`` requests; request ``i`` has ``i`` as the span id of its first span (so its arrival is known)."""
    out = []
    for i in range(count):
        request = ExportTraceServiceRequest.FromString(payloads[i % len(payloads)])
        request.resource_spans[0].scope_spans[0].spans[0].span_id = i.to_bytes(8, "big")
        out.append(request.SerializeToString())
    return out


async def capacity(receiver_port: int, sink: ArrivalSink, requests: int) -> float:
    """Spans per second through the gateway while the load generator sends flat out."""
    sink.spans = 0
    start = time.perf_counter()
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--target", f"127.0.0.1:{receiver_port}", "--requests",
        str(requests), "--concurrency", "64", "--spans", str(SPANS), stdout=asyncio.subprocess.PIPE)
    os.sched_setaffinity(load.pid, {1})
    out, _ = await load.communicate()
    sent = json.loads(out)["items"]
    deadline = time.monotonic() + 30
    while sink.spans < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return sink.spans / (time.perf_counter() - start)


async def paced(receiver_port: int, sink: ArrivalSink, requests: list[bytes], rate: float) -> list[float]:
    """Send ``requests`` at ``rate`` per second; the added latency of each, in seconds."""
    sink.arrived.clear()
    sent_at: dict[int, float] = {}
    async with aio.insecure_channel(f"127.0.0.1:{receiver_port}") as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        await channel.channel_ready()
        calls = []
        start = time.perf_counter()
        for i, body in enumerate(requests):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[i] = time.perf_counter()
            calls.append(asyncio.ensure_future(call(body, timeout=30)))
        await asyncio.gather(*calls)
    deadline = time.monotonic() + 10
    while len(sink.arrived) < len(requests) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return [sink.arrived[i] - sent_at[i] for i in sent_at if i in sink.arrived]


async def measure(batch: bool, seconds: float, payloads: list[bytes]) -> dict[str, Any]:
    sink = ArrivalSink()
    await sink.server.start()
    receiver_port = free_port()
    config = Path(tempfile.mkdtemp(prefix="otelgw-bench-")) / "latency.yaml"
    config.write_text(gateway_config(receiver_port, sink.port, free_port(), processors={"batch": BATCH} if batch
                                     else {}))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    os.sched_setaffinity(gateway.pid, {0})
    try:
        await wait_for_port(receiver_port, gateway)
        await capacity(receiver_port, sink, 100)  # warm-up
        full = await capacity(receiver_port, sink, 1200)
        rate = full / 2 / SPANS  # requests per second at half load
        latencies = await paced(receiver_port, sink, numbered(payloads, max(50, int(rate * seconds))), rate)
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
    latencies.sort()
    return {"capacity": full, "rate": rate * SPANS, "count": len(latencies),
            "p50": statistics.median(latencies), "p99": latencies[int(0.99 * (len(latencies) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each half-load run")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    payloads = make_payloads(64, SPANS)
    print(heading("added latency"))
    print(f"  workload: requests of {SPANS} spans, {len(payloads[0]) / SPANS:.0f} B/span, sent on a fixed schedule "
          f"at half the capacity measured just before, {args.seconds:g} s per pipeline")
    for batch in (False, True):
        result = asyncio.run(measure(batch, args.seconds, payloads))
        name = "OTLP -> batch -> OTLP" if batch else "OTLP -> OTLP (no batch)"
        print(f"  {name:<24} capacity {result['capacity']:>9,.0f} spans/s, at {result['rate']:>9,.0f} spans/s: "
              f"p50 {result['p50'] * 1000:6.1f} ms  p99 {result['p99'] * 1000:6.1f} ms  "
              f"({result['count']} requests)")


if __name__ == "__main__":
    main()
