"""Benchmark: OTLP/gRPC in → tail_sampling → OTLP/gRPC out on one core, and bytes retained per buffered span.

Same layout as ``bench.passthrough``: the gateway process is pinned to core 0; the load generator and the counting
sink (this process) share core 1. The rule is the use cases' one (keep errors, traces slower than 2 s, 10% of the
rest) with decision_wait 1 s. Every request carries new trace ids (``bench.tail_sampling_load``), so the sampler
buffers and decides every trace instead of answering from its decision cache. Figures printed:
- ceiling: ``ExportTraceServiceRequest`` parse + serialize of the same requests, on one core, in this run;
- ingest, wall: spans accepted per second while the load generator runs flat out;
- per gateway CPU-second: spans in per CPU-second the gateway used from the first request until the last kept
  span reached the sink (so buffering, deciding and exporting the kept share are all paid for);
- memory: bytes held per buffered span (tracemalloc, in this process, everything the processor allocates while
  it holds the spans, with decision_wait long enough that none is released), next to the span's serialized size.
  Measured for the workload as sent (each trace's spans adjacent in its request) and with the spans of every
  request shuffled, so that no two spans of a trace are adjacent (the worst case for the run-based buffer).

    python -m bench.tail_sampling [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
import tracemalloc
import urllib.request

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.passthrough import CountingSink, cpu_seconds, measure_ceiling, start_gateway, wait_for_port
from bench.passthrough import gateway_config as passthrough_config
from bench.tail_sampling_load import UniqueTraces
from bench.workload import make_payloads

GOAL_SPANS_PER_S = 100_000  # tail_sampling + redaction + span_metrics together (the project's goal)
DECISION_WAIT_S = 1.0

RULE = """
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: slow, type: latency, latency: {threshold_ms: 2000}}
      - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 10}}"""


def gateway_config(receiver_port: int, sink_port: int, metrics_port: int) -> str:
    sampler = {"decision_wait": f"{DECISION_WAIT_S}s", "num_traces": 500000, "policies": yaml.safe_load(RULE)}
    return passthrough_config(receiver_port, sink_port, metrics_port, processors={"tail_sampling": sampler})


async def run(requests: int, concurrency: int, spans: int) -> dict:
    ports: dict[str, int] = {}

    def config(receiver_port: int, sink_port: int, metrics_port: int) -> str:
        ports["metrics"] = metrics_port
        return gateway_config(receiver_port, sink_port, metrics_port)

    sink, receiver_port, gateway = await start_gateway("tail_sampling", config)
    return await measure_sampled(sink, receiver_port, gateway, ["bench.tail_sampling_load", "--spans", str(spans)],
                                 requests, concurrency, metrics_port=ports["metrics"])


async def measure_sampled(sink: CountingSink, receiver_port: int, gateway: subprocess.Popen, load_module: list[str],
                          requests: int, concurrency: int, stop: int = signal.SIGTERM,
                          metrics_port: int | None = None) -> dict:
    """Warm a gateway whose pipeline samples by trace up, send ``requests`` with ``python -m load_module`` on core
    1, and wait until the sink has been quiet for longer than a decision round and (with ``metrics_port``, the
    gateway's self-metrics) tail_sampling holds no trace; then stop the gateway with ``stop``. What was sent,
    spans kept, gateway CPU-s, and seconds until the last kept span arrived."""

    def waiting_traces() -> float:
        """Traces tail_sampling still holds, from the gateway's self-metrics (0 without them)."""
        if metrics_port is None:
            return 0.0
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("otelcol_processor_tail_sampling_sampling_traces_on_memory"))

    async def load(count: int) -> dict:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *load_module, "--target", f"127.0.0.1:{receiver_port}",
            "--requests", str(count), "--concurrency", str(concurrency), stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(process.pid, {1})
        out, _ = await process.communicate()
        return json.loads(out)  # type: ignore[no-any-return]

    async def settle() -> None:
        """Wait until the sink has received nothing for longer than a decision round, and no trace waits. (A quiet
        sink alone ended runs early on a loaded machine, whose gateway can be off the CPU for seconds: the kept
        spans then came short and the CPU-seconds with them.)"""
        while True:
            while time.perf_counter() - sink.last_receive < DECISION_WAIT_S + 1.5:
                await asyncio.sleep(0.1)
            if await asyncio.to_thread(waiting_traces) == 0:
                return
            await asyncio.sleep(0.5)

    try:
        await wait_for_port(receiver_port, gateway)
        await load(50)  # warm up: the whole path, including a few decision rounds
        sink.last_receive = time.perf_counter()
        await settle()
        sink.spans = sink.requests = 0
        cpu_before = cpu_seconds(gateway.pid)
        start = time.perf_counter()
        sent = await load(requests)
        sink.last_receive = max(sink.last_receive, time.perf_counter())
        await settle()
        cpu = cpu_seconds(gateway.pid) - cpu_before
        span_of_output = sink.last_receive - start
    finally:
        gateway.send_signal(stop)
        gateway.wait(60)
        await sink.server.stop(None)
    return {"sent": sent, "kept_spans": sink.spans, "gateway_cpu_s": cpu, "output_s": span_of_output}


async def retained_bytes(requests: list[bytes]) -> tuple[float, float, int]:
    """(bytes held per buffered span, mean serialized span size, spans) for ``requests`` held by tail_sampling."""
    from gateway.component import Kind, Signal
    from gateway.configtypes import decode
    from gateway.testing import Sink, settings_for
    from plugins.processors.tail_sampling.factory import factory

    config = decode(factory.create_default_config(), {
        "decision_wait": "1h", "num_traces": 10_000_000, "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
            {"name": "slow", "type": "latency", "latency": {"threshold_ms": 2000}}]})
    assert factory.create_traces is not None
    processor = factory.create_traces(settings_for(Kind.PROCESSOR, "tail_sampling", Signal.TRACES), config, Sink())
    span_bytes = spans = 0
    for payload in requests:
        batch = ExportTraceServiceRequest.FromString(payload)
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                spans += len(ss.spans)
                span_bytes += sum(s.ByteSize() for s in ss.spans)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for payload in requests:
        await processor.consume_traces(ExportTraceServiceRequest.FromString(payload))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert processor.buffered_spans == spans
    await processor.shutdown()
    return held / spans, span_bytes / spans, spans


def shuffled(payloads: list[bytes], seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for payload in payloads:
        batch = ExportTraceServiceRequest.FromString(payload)
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                spans = list(ss.spans)
                rng.shuffle(spans)
                del ss.spans[:]
                ss.spans.extend(spans)
        out.append(batch.SerializeToString())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--memory-requests", type=int, default=200)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    payloads = make_payloads(64, args.spans)
    ceiling = measure_ceiling(payloads, args.spans)
    unique = UniqueTraces(args.spans)
    held_requests = [unique(i) for i in range(args.memory_requests)]
    memory = asyncio.run(retained_bytes(held_requests))
    memory_shuffled = asyncio.run(retained_bytes(shuffled(held_requests)))
    del held_requests
    os.sched_setaffinity(0, {1})
    result = asyncio.run(run(args.requests, args.concurrency, args.spans))
    sent = result["sent"]["items"]
    wall = sent / result["sent"]["elapsed_s"]
    per_core = sent / result["gateway_cpu_s"]
    print(f"otelgw tail_sampling benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} "
          f"{os.cpu_count()} cores  python {platform.python_version()}")
    print(f"  workload: {args.requests} requests x {args.spans} spans, {len(payloads[0]) / args.spans:.0f} B/span, "
          f"traces of 10 spans, every trace id new, concurrency {args.concurrency}")
    print("  rule: keep errors, traces >= 2 s, 10% of the rest; decision_wait 1s")
    print(f"  ceiling (parse + serialize, 1 core):        {ceiling:>10,.0f} spans/s")
    print(f"  OTLP/gRPC -> tail_sampling -> OTLP, wall:   {wall:>10,.0f} spans/s in  ({wall / ceiling:.0%} of ceiling)")
    print(f"  per gateway CPU-second (1 core):            {per_core:>10,.0f} spans/s in  "
          f"({per_core / ceiling:.0%} of ceiling; goal with redaction + span_metrics too: {GOAL_SPANS_PER_S:,})")
    print(f"  kept: {result['kept_spans']:,} of {sent:,} spans ({result['kept_spans'] / max(1, sent):.1%}); "
          f"gateway used {result['gateway_cpu_s']:.2f} CPU-s; failures: {result['sent']['failures'] or 'none'}")
    for label, (held, size, spans) in (("as sent (trace spans adjacent)", memory),
                                       ("shuffled (no two adjacent)", memory_shuffled)):
        print(f"  memory, {label:<31} {held:>6.0f} B held per buffered span, {size:.0f} B serialized "
              f"-> {held / size:.2f}x  (goal <= 1.5x; {spans:,} spans held)")


if __name__ == "__main__":
    main()
