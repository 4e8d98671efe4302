"""Benchmark: ``otelgw run --workers 1`` and ``--workers 2``, per CPU-second of every gateway process.

Two pipelines, each with 1 and 2 workers: pass-through (OTLP/gRPC in → batch → OTLP/gRPC out), which is never
routed, and tail_sampling (always_sample, decision_wait 1 s, then batch), which routes every span to the worker
owning its trace. The load (``bench.tail_sampling_load``: new trace ids in every request) goes over 8 connections
so the kernel spreads them over the workers; this process is the counting sink. Nothing is pinned: the machine's
cores are shared by the workers, the load generator and the sink (and whatever else runs), so the figures that
compare are per CPU-second; wall throughput is printed for what it is. Figures printed:
- ceiling: ``ExportTraceServiceRequest`` parse + serialize of the same requests, in this run, per CPU-second of
  this process (the cores are shared, so a wall-clock ceiling would fall with the machine's other load);
- spans per CPU-second of all gateway processes (supervisor and workers) from the first request to the last
  span at the sink, and spans per wall second;
- routed: the share of spans that crossed to another worker, and the CPU each routed span costs,
  ``(t2 - t1) / routed share`` with t1, t2 the CPU-seconds per span at 1 and 2 workers;
- more cores, derived: with N workers a share (N-1)/N of spans is routed, so a span costs t1 + r (N-1)/N
  CPU-seconds, and N busy cores give N / (t1 + r (N-1)/N) spans per second. This assumes the cores are the
  gateway's (load generator and backend elsewhere) and nothing else is shared (memory bandwidth, the NIC).

    python -m bench.workers [--requests 600] [--concurrency 64]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.passthrough import BATCH, CountingSink, cpu_seconds, free_port, heading, prepare, wait_for_port
from bench.passthrough import gateway_config as passthrough_config

CONNECTIONS = 8
PIPELINES: dict[str, dict[str, Any]] = {
    "pass-through (batch)": {"batch": BATCH},
    "tail_sampling + batch": {"tail_sampling": {"decision_wait": "1s",
                                                "policies": [{"name": "all", "type": "always_sample"}]},
                              "batch": BATCH},
}


def _processes(supervisor: int) -> list[int]:
    """The supervisor and its children (the workers); one process with --workers 1."""
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        children = []
    return [supervisor, *map(int, children)]


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _metrics(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        return str(response.read().decode())


async def _all_started(metrics_port: int, workers: int) -> None:
    """Until every worker serves (its self-metrics appear in the supervisor's view); the first may be alone."""
    deadline = time.monotonic() + 60
    while workers > 1 and len(set(re.findall(
            r'^otelcol_receiver_accepted_spans_total\{worker="(\d+)"', _metrics(metrics_port), re.M))) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not all start within 60 s")
        await asyncio.sleep(0.1)


def _routed(metrics_port: int) -> float:
    body = _metrics(metrics_port)
    return sum(float(m.group(1)) for m in re.finditer(
        r'^otelgw_worker_routed_items_total\{[^}]*direction="sent"[^}]*\} (\S+)$', body, re.M))


async def _load(port: int, requests: int, concurrency: int, spans: int) -> dict[str, Any]:
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.tail_sampling_load", "--target", f"127.0.0.1:{port}", "--requests",
        str(requests), "--concurrency", str(concurrency), "--spans", str(spans), "--connections", str(CONNECTIONS),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await load.communicate()
    return dict(json.loads(out))


async def run(processors: dict[str, Any], workers: int, requests: int, concurrency: int,
              spans: int) -> dict[str, Any]:
    sink = CountingSink()
    await sink.server.start()
    receiver_port, metrics_port = free_port(), free_port()
    config = Path(tempfile.mkdtemp(prefix="otelgw-bench-")) / "workers.yaml"
    config.write_text(passthrough_config(receiver_port, sink.port, metrics_port, processors=processors))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config),
                                "--workers", str(workers)])
    try:
        await wait_for_port(receiver_port, gateway, timeout=60)
        await _all_started(metrics_port, workers)
        await _load(receiver_port, 50, 8, spans)  # warm-up: every worker, the whole path
        while sink.spans < 50 * spans:
            await asyncio.sleep(0.05)
        pids = _processes(gateway.pid)
        assert len(pids) == (1 if workers == 1 else workers + 1), f"expected {workers} workers, found {pids}"
        sink.spans = 0
        routed_before = _routed(metrics_port) if workers > 1 else 0.0
        cpu_before = _cpu(pids)
        start = time.perf_counter()
        sent = await _load(receiver_port, requests, concurrency, spans)
        deadline = time.monotonic() + 120
        while sink.spans < sent["items"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        elapsed = sink.last_receive - start
        cpu = _cpu(pids) - cpu_before
        routed = (_routed(metrics_port) - routed_before) if workers > 1 else 0.0
    finally:
        gateway.terminate()
        gateway.wait(60)
        await sink.server.stop(None)
    return {"sent": sent, "spans": sink.spans, "elapsed_s": elapsed, "cpu_s": cpu, "routed": routed}


def measure_ceiling(payloads: list[bytes], spans_per_request: int, seconds: float = 2.0) -> float:
    """Parse + serialize of the same requests, per CPU-second of this process."""
    parse = ExportTraceServiceRequest.FromString
    count = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for payload in payloads:
            parse(payload).SerializeToString()
        count += len(payloads)
    return count * spans_per_request / (time.process_time() - start)


def main() -> None:
    args, payloads, _ = prepare(__doc__, requests=600)
    ceiling = measure_ceiling(payloads, args.spans)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # nothing pinned here: the workers need every core
    print(heading("workers"))
    print(f"  workload: {args.requests} requests x {args.spans} spans, {len(payloads[0]) / args.spans:.0f} B/span, "
          f"concurrency {args.concurrency} over {CONNECTIONS} connections, new trace ids in every request")
    print(f"  ceiling (parse + serialize):          {ceiling:>10,.0f} spans per CPU-second")
    print(f"  {'pipeline':<24}{'workers':>8}{'per CPU-s':>12}{'of ceiling':>12}{'wall/s':>10}{'CPU-s':>8}"
          f"{'routed':>8}{'lost':>6}")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for name, processors in PIPELINES.items():
        for workers in (1, 2):
            result = results[(name, workers)] = asyncio.run(
                run(processors, workers, args.requests, args.concurrency, args.spans))
            per_cpu = result["spans"] / result["cpu_s"]
            routed = f"{result['routed'] / result['spans']:.0%}" if workers > 1 else "-"
            print(f"  {name:<24}{workers:>8}{per_cpu:>12,.0f}{per_cpu / ceiling:>12.0%}"
                  f"{result['spans'] / result['elapsed_s']:>10,.0f}{result['cpu_s']:>8.2f}{routed:>8}"
                  f"{result['sent']['items'] - result['spans']:>6}")
    for name in PIPELINES:
        one, two = results[(name, 1)], results[(name, 2)]
        t1, t2 = one["cpu_s"] / one["spans"], two["cpu_s"] / two["spans"]
        share = two["routed"] / two["spans"]
        print(f"  {name}: 2 workers use {t2 / t1 - 1:+.0%} CPU per span against 1 worker", end="")
        if share > 0:
            cost = (t2 - t1) / share
            print(f"; {share:.0%} of spans routed, {cost * 1e6:.1f} µs CPU per routed span")
            derived = "  ".join(f"{n} cores {n / (t1 + cost * (n - 1) / n):,.0f}/s" for n in (2, 4, 8, 16))
            print(f"    more cores (derived, see the docstring): {derived}")
        else:
            print("; nothing routed")
            derived = "  ".join(f"{n} cores {n / t2:,.0f}/s" for n in (2, 4, 8, 16))
            print(f"    more cores (derived: N / CPU-s per span at 2 workers): {derived}")


if __name__ == "__main__":
    main()
