"""Benchmark: what durability costs. Spans per gateway CPU-second, OTLP/gRPC in → OTLP/gRPC out, with

- the exporter's in-memory sending queue, and with a persistent one (``sending_queue: {storage: file_storage}``);
- ``tail_sampling`` (always_sample, decision_wait 1 s) in front of an in-memory queue, and with ``storage`` in
  front of a persistent queue (every span written ahead twice: sampling log, then queue log);

next to the ceiling (protobuf parse + serialize of the same requests, one core) measured in the same run. Same
layout as ``bench.passthrough``: the gateway pinned to core 0, the load generator and the counting sink on core 1.
Every request carries new trace ids (``bench.tail_sampling_load``). A figure is spans delivered to the sink per
CPU-second the gateway used from the first request until the last span arrived. fsync is off (the default: the
data survives SIGKILL; see the file_storage README for what fsync adds).

    python -m bench.durability [--requests 2000] [--concurrency 64] [--spans 500]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.passthrough import CountingSink, cpu_seconds, free_port, heading, prepare, wait_for_port
from bench.passthrough import gateway_config as passthrough_config

#: The brief's goal: a durable path costs at most 30% of its in-memory twin's throughput.
GOAL_RATIO = 0.70
DECISION_WAIT_S = 1.0


def config_for(case: str, receiver_port: int, sink_port: int, metrics_port: int, storage: Path) -> str:
    sampling = case.startswith("tail_sampling")
    durable = case.endswith("durable")
    processors: dict[str, Any] = {}
    if sampling:
        processors["tail_sampling"] = {"decision_wait": f"{DECISION_WAIT_S}s", "num_traces": 500000,
                                       "policies": [{"name": "all", "type": "always_sample"}]}
        if durable:
            processors["tail_sampling"]["storage"] = "file_storage"
    config = yaml.safe_load(passthrough_config(receiver_port, sink_port, metrics_port, processors=processors))
    if not processors:
        config["processors"] = {}
    if durable:
        config["extensions"] = {"file_storage": {"directory": str(storage), "create_directory": True}}
        config["service"]["extensions"] = ["file_storage"]
        config["exporters"]["otlp_grpc"]["sending_queue"].update(
            {"storage": "file_storage", "sizer": "bytes", "queue_size": 4 << 30})
    return yaml.safe_dump(config, sort_keys=False)


async def run(case: str, requests: int, concurrency: int, spans: int) -> dict[str, Any]:
    sink = CountingSink()
    await sink.server.start()
    receiver_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-durability-"))
    config = workdir / f"{case}.yaml"
    config.write_text(config_for(case, receiver_port, sink.port, free_port(), workdir / "storage"))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    os.sched_setaffinity(gateway.pid, {0})

    async def load(count: int) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.tail_sampling_load", "--target", f"127.0.0.1:{receiver_port}",
            "--requests", str(count), "--concurrency", str(concurrency), "--spans", str(spans),
            stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(process.pid, {1})
        out, _ = await process.communicate()
        return json.loads(out)  # type: ignore[no-any-return]

    async def delivered(count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while sink.spans < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    try:
        await wait_for_port(receiver_port, gateway)
        warm = await load(50)  # the whole path once, decision rounds included
        await delivered(warm["items"])
        sink.spans = 0
        cpu_before = cpu_seconds(gateway.pid)
        start = time.perf_counter()
        sent = await load(requests)
        await delivered(sent["items"])
        cpu = cpu_seconds(gateway.pid) - cpu_before
        elapsed = sink.last_receive - start
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"sent": sent, "received": sink.spans, "gateway_cpu_s": cpu, "elapsed_s": elapsed}


CASES = {
    "memory": "in-memory sending queue",
    "durable": "persistent sending queue",
    "tail_sampling": "tail_sampling -> in-memory queue",
    "tail_sampling_durable": "tail_sampling storage -> persistent queue",
}


def main() -> None:
    args, payloads, ceiling = prepare(__doc__, requests=2000)
    results = {case: asyncio.run(run(case, args.requests, args.concurrency, args.spans)) for case in CASES}
    rate = {case: r["received"] / r["gateway_cpu_s"] for case, r in results.items()}
    print(heading("durability"))
    print(f"  workload: {args.requests} requests x {args.spans} spans, {len(payloads[0]) / args.spans:.0f} B/span, "
          f"concurrency {args.concurrency}, new trace ids in every request, fsync off")
    print(f"  {'ceiling (parse + serialize, 1 core):':<64}{ceiling:>10,.0f} spans/s")
    for case, label in CASES.items():
        r = results[case]
        lost = r["sent"]["items"] - r["received"]
        print(f"  {label + ', per gateway CPU-s:':<64}{rate[case]:>10,.0f} spans/s  ({rate[case] / ceiling:.0%} of "
              f"ceiling; {r['gateway_cpu_s']:.2f} CPU-s; lost {lost})")
    for durable, memory in (("durable", "memory"), ("tail_sampling_durable", "tail_sampling")):
        ratio = rate[durable] / rate[memory]
        verdict = "meets" if ratio >= GOAL_RATIO else "misses"
        print(f"  {CASES[durable]} / {CASES[memory]}: {ratio:.0%} ({verdict} the goal of {GOAL_RATIO:.0%})")


if __name__ == "__main__":
    main()
