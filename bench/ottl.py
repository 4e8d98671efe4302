"""Benchmark: OTLP/gRPC in → transform (five typical statements) → OTLP/gRPC out, and the same through a
``filter`` that drops health checks, each next to pass-through and the ceiling measured in the same run.

Same layout as ``bench.passthrough``: the gateway pinned to core 0, the load generator and the counting sink on
core 1. The figure is spans received by the gateway per gateway CPU-second (utime + stime).

The workload (``bench.workload``) has no ``http.url``; the statement the issue describes as replace_pattern on
``http.url`` runs on ``http.route``, which every span has, so it does real work on the server spans. The transform
runs on the received bytes (gateway/ottl/wire.py); "the same, parsed request" adds a statement the bytes path does
not run, so the same work is done through the OTLP classes, for comparison.

    python -m bench.ottl [--requests 1500] [--concurrency 64]

End-to-end figures move by 10-20% from run to run on a shared machine: compare two versions of the OTTL code with
``python -m bench.ottl_inprocess`` (the same statements and filter, in process, CPU time per span).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.passthrough import (
    CountingSink,
    cpu_seconds,
    free_port,
    gateway_config,
    heading,
    prepare,
    wait_for_port,
)

GOAL = 150_000

TRANSFORM = {"error_mode": "ignore", "trace_statements": [{"context": "span", "statements": [
    'delete_key(attributes, "network.peer.address")',
    'delete_key(attributes, "url.scheme")',
    'set(attributes["http.method"], attributes["http.request.method"])',
    "truncate_all(attributes, 64)",
    'replace_pattern(attributes["http.route"], "\\\\{id\\\\}", "{customer_id}") where kind == SPAN_KIND_SERVER',
]}]}
FILTER = {"error_mode": "ignore", "traces": {"span": ['attributes["http.route"] == "/healthz"']}}
# The same five statements and a sixth that changes nothing (no span has 128 attributes) but is not run on the
# received bytes, so the whole processor works on the parsed request: what the bytes path saves, in the same run.
PARSED = {"error_mode": "ignore", "trace_statements": [{"context": "span", "statements": [
    *TRANSFORM["trace_statements"][0]["statements"], "limit(attributes, 128)"]}]}

PIPELINES: dict[str, dict[str, Any]] = {
    "pass-through (no processor)": {},
    "transform, 5 statements": {"transform": TRANSFORM},
    "the same, parsed request": {"transform": PARSED},
    "filter, health checks": {"filter": FILTER},
}


async def run(processors: dict[str, Any], requests: int, concurrency: int, spans: int) -> dict[str, Any]:
    sink = CountingSink()
    await sink.server.start()
    receiver_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-ottl-"))
    config = workdir / "ottl.yaml"
    config.write_text(gateway_config(receiver_port, sink.port, free_port(), processors=processors))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    os.sched_setaffinity(gateway.pid, {0})

    async def load(count: int) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--target", f"127.0.0.1:{receiver_port}", "--requests",
            str(count), "--concurrency", str(concurrency), "--spans", str(spans), stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(process.pid, {1})
        out, _ = await process.communicate()
        return dict(json.loads(out))

    async def settle() -> None:
        # The filter drops some spans, so wait until the sink stops receiving rather than for a count.
        last = -1
        while sink.spans != last:
            last = sink.spans
            await asyncio.sleep(0.5)

    try:
        await wait_for_port(receiver_port, gateway)
        await load(50)
        await settle()
        sink.spans = 0
        cpu_before = cpu_seconds(gateway.pid)
        start = time.perf_counter()
        sent = await load(requests)
        await settle()
        elapsed = sink.last_receive - start
        cpu = cpu_seconds(gateway.pid) - cpu_before
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
    return {"sent": sent, "received": sink.spans, "elapsed_s": elapsed, "cpu_s": cpu}


def main() -> None:
    args, payloads, ceiling = prepare(__doc__, requests=1500)
    print(heading("OTTL"))
    print(f"  workload: {args.requests} requests x {args.spans} spans, {len(payloads[0]) / args.spans:.0f} B/span, "
          f"concurrency {args.concurrency}")
    print(f"  ceiling (parse + serialize, 1 core): {ceiling:>10,.0f} spans/s")
    for label, processors in PIPELINES.items():
        result = asyncio.run(run(processors, args.requests, args.concurrency, args.spans))
        spans_in = result["sent"]["items"]
        per_cpu = spans_in / result["cpu_s"]
        goal = f"goal {GOAL:,}" if processors and processors.get("transform") is not PARSED else "reference"
        print(f"  {label:<28} {per_cpu:>10,.0f} spans in per gateway CPU-second ({per_cpu / ceiling:.0%} of "
              f"ceiling; {goal}); {result['received']:,} of {spans_in:,} spans out, "
              f"failures: {result['sent']['failures'] or 'none'}")


if __name__ == "__main__":
    main()
