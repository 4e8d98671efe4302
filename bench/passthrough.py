"""Benchmark: OTLP/gRPC in → batch → OTLP/gRPC out, on one core, next to the ceiling measured in the same run.

Layout on a 2-core machine: the gateway process is pinned to core 0; the load generator and the counting sink
(this process) share core 1. Figures printed:
- ceiling: ``ExportTraceServiceRequest`` parse + serialize of the same requests, on one core, in this run;
- throughput: spans delivered to the sink per wall-clock second while the load generator runs flat out;
- per gateway core: spans per CPU-second the gateway process used (utime + stime): the "per core" figure.

    python -m bench.passthrough [--requests 3000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from grpc import aio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.workload import make_payloads

GOAL_SPANS_PER_S = 200_000
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_ceiling(payloads: list[bytes], spans_per_request: int, seconds: float = 2.0) -> float:
    """Parse + serialize of the same requests per CPU-second of this process: the upper bound any Python gateway
    could reach. CPU time, not wall time, like the gateway's figures: on a shared machine wall time counts the
    other processes' turns on the core too."""
    parse = ExportTraceServiceRequest.FromString
    count = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for payload in payloads:
            parse(payload).SerializeToString()
        count += len(payloads)
    return count * spans_per_request / (time.process_time() - start)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CountingSink:
    """An OTLP/gRPC trace sink that parses every request (as a real backend would) and counts spans."""

    def __init__(self) -> None:
        self.spans = 0
        self.requests = 0
        self.last_receive = 0.0
        self.server = aio.server(options=[("grpc.max_receive_message_length", 256 << 20)])
        response = ExportTraceServiceResponse().SerializeToString()

        async def export(request: bytes, context: object) -> bytes:
            now = time.perf_counter()
            self.record(ExportTraceServiceRequest.FromString(request), now)
            self.requests += 1
            self.last_receive = now
            return response

        import grpc

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)})
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def record(self, batch: ExportTraceServiceRequest, now: float) -> None:
        """Count a received request's spans (``now``: when it arrived)."""
        self.spans += sum(len(ss.spans) for rs in batch.resource_spans for ss in rs.scope_spans)


#: The batch processor every benchmark pipeline ends with (tail_sampling batches on its own).
BATCH = {"send_batch_size": 8192, "send_batch_max_size": 16384, "timeout": "200ms"}


def gateway_config(receiver_port: int, sink_port: int, metrics_port: int, *, signal: str = "traces",
                   processors: dict[str, Any] | None = None) -> str:
    """The benchmark gateway: OTLP/gRPC in → ``processors`` (in order; default batch) → OTLP/gRPC out."""
    processors = {"batch": BATCH} if processors is None else processors
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{receiver_port}"}}}},
        "processors": processors,
        "exporters": {"otlp_grpc": {"endpoint": f"127.0.0.1:{sink_port}", "tls": {"insecure": True},
                                    "compression": "none",
                                    "sending_queue": {"num_consumers": 4, "queue_size": 1000}}},
        "service": {
            "telemetry": {"metrics": {"address": f"127.0.0.1:{metrics_port}"}, "logs": {"level": "warn"}},
            "pipelines": {signal: {"receivers": ["otlp"], "processors": list(processors),
                                   "exporters": ["otlp_grpc"]}},
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


async def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with code {process.returncode}; see its log above")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"gateway did not open port {port}; see its log above")


async def measure_load(gateway: subprocess.Popen, receiver_port: int, sink: CountingSink, requests: int,
                       concurrency: int, spans: int, loadgen_options: Sequence[str] = ()) -> dict:
    """Warm ``gateway`` up with 50 requests, then send ``requests`` through ``bench.loadgen`` (on core 1, with
    ``loadgen_options``) and measure the gateway's CPU until ``sink`` has every span. Stops the gateway and the
    sink, also on failure."""
    loadgen = [sys.executable, "-m", "bench.loadgen", "--target", f"127.0.0.1:{receiver_port}", "--spans",
               str(spans), *loadgen_options]
    try:
        await wait_for_port(receiver_port, gateway)
        # Warm up: a few requests through the whole path before measuring.
        warm = await asyncio.create_subprocess_exec(*loadgen, "--requests", "50", "--concurrency", "4",
                                                    stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(warm.pid, {1})
        await warm.communicate()
        while sink.spans < 50 * spans:
            await asyncio.sleep(0.05)
        sink.spans = 0
        cpu_before = cpu_seconds(gateway.pid)
        start = time.perf_counter()
        load = await asyncio.create_subprocess_exec(*loadgen, "--requests", str(requests), "--concurrency",
                                                    str(concurrency), stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(load.pid, {1})
        out, _ = await load.communicate()
        sent = json.loads(out)
        deadline = time.monotonic() + 60
        while sink.spans < sent["items"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        elapsed = sink.last_receive - start
        cpu = cpu_seconds(gateway.pid) - cpu_before
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
    return {"sent": sent, "received_spans": sink.spans, "elapsed_s": elapsed, "gateway_cpu_s": cpu}


async def start_gateway(name: str, config: Callable[[int, int, int], str], command: list[str] | None = None
                        ) -> tuple[CountingSink, int, subprocess.Popen]:
    """A started counting sink, the receiver's port, and a gateway (on core 0) running ``config(receiver_port,
    sink_port, metrics_port)``, written to ``name``.yaml in a new temporary directory. ``command`` starts the
    gateway instead of ``python -m gateway`` (e.g. under a profiler)."""
    sink = CountingSink()
    await sink.server.start()
    receiver_port = free_port()
    path = Path(tempfile.mkdtemp(prefix="otelgw-bench-")) / f"{name}.yaml"
    path.write_text(config(receiver_port, sink.port, free_port()))
    gateway = subprocess.Popen([*(command or [sys.executable, "-m", "gateway"]), "run", "--config", str(path)])
    os.sched_setaffinity(gateway.pid, {0})
    return sink, receiver_port, gateway


async def run(requests: int, concurrency: int, spans: int) -> dict:
    sink, receiver_port, gateway = await start_gateway("passthrough", gateway_config)
    return await measure_load(gateway, receiver_port, sink, requests, concurrency, spans)


def prepare(description: str | None, requests: int,
            options: Callable[[argparse.ArgumentParser], object] | None = None
            ) -> tuple[argparse.Namespace, list[bytes], float]:
    """What every span benchmark starts with: its options (``options`` adds the benchmark's own), the workload's
    payloads, and the ceiling measured on core 0; the benchmark itself then runs its load on core 1 (the gateway
    gets core 0)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if options is not None:
        options(parser)
    parser.add_argument("--requests", type=int, default=requests)
    # Requests in flight. The batch processor answers a request only once its batch was sent, so with fewer than
    # send_batch_size spans in flight every batch waits for its timeout and the load measures the timer, not the
    # gateway: 64 x 500 spans fill the benchmark's 8192-span batches.
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--spans", type=int, default=500)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    payloads = make_payloads(64, args.spans)
    ceiling = measure_ceiling(payloads, args.spans)
    os.sched_setaffinity(0, {1})
    return args, payloads, ceiling


def heading(name: str) -> str:
    """The first line of a benchmark's output: what, when, and on which machine."""
    return (f"otelgw {name} benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} {os.cpu_count()} cores  "
            f"python {platform.python_version()}")


def main() -> None:
    args, payloads, ceiling = prepare(__doc__, requests=3000)
    result = asyncio.run(run(args.requests, args.concurrency, args.spans))
    wall = result["received_spans"] / result["elapsed_s"]
    per_core = result["received_spans"] / result["gateway_cpu_s"]
    lost = result["sent"]["items"] - result["received_spans"]
    print(heading("pass-through"))
    print(f"  workload: {args.requests} requests x {args.spans} spans, {len(payloads[0]) / args.spans:.0f} B/span, "
          f"concurrency {args.concurrency}")
    print(f"  ceiling (parse + serialize, 1 core):     {ceiling:>10,.0f} spans/s")
    print(f"  OTLP/gRPC -> batch -> OTLP/gRPC, wall:   {wall:>10,.0f} spans/s  ({wall / ceiling:.0%} of ceiling)")
    print(f"  per gateway CPU-second (1 core):         {per_core:>10,.0f} spans/s  "
          f"(goal {GOAL_SPANS_PER_S:,}; gateway used {result['gateway_cpu_s']:.2f} CPU-s "
          f"over {result['elapsed_s']:.2f} s)")
    print(f"  spans lost: {lost}  failures: {result['sent']['failures'] or 'none'}")


if __name__ == "__main__":
    main()
