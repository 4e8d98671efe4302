"""Benchmark: what a tap costs when no one is watching (the goal: at most 2%), and while one is attached.

One run of a gateway is too noisy to show 2%: on a shared machine two runs of the same gateway differ by more.
So two identical gateways (OTLP/gRPC in -> memory_limiter -> batch -> OTLP/gRPC out, both pinned to core 0) are
measured in interleaved rounds, in spans per gateway CPU-second (the CPU the gateway process used, so the load
generator and the sink on core 1 do not count), next to the parse + serialize ceiling measured in the same run:

- A is never tapped;
- B has a tap attached (``GET /api/tap?component=batch``, 100 items/s sampled, read and thrown away) for one
  round, which is measured too, and then detached (checked: ``taps_attached`` is 0 in ``/api/stats``).

Then the rounds alternate A B B A A B ... (an ABBA order, so a drift of the machine during the run falls on both
alike). The figures are the median of each gateway's rounds with their spread (lowest to highest), and the cost
of a detached tap as B's median against A's. A's own spread is the noise floor: a difference within it is no
measurable cost.

    python -m bench.tap [--requests 1000] [--concurrency 64] [--rounds 6]
"""

from __future__ import annotations

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

import aiohttp
import yaml

from bench.passthrough import (
    BATCH,
    CountingSink,
    cpu_seconds,
    free_port,
    gateway_config,
    heading,
    prepare,
    wait_for_port,
)

TOKEN = "bench-tap-token"


async def load(receiver_port: int, requests: int, concurrency: int, spans: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--target", f"127.0.0.1:{receiver_port}", "--requests", str(requests),
        "--concurrency", str(concurrency), "--spans", str(spans), stdout=asyncio.subprocess.PIPE)
    os.sched_setaffinity(process.pid, {1})
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def measure(sink: CountingSink, gateway: subprocess.Popen[bytes], receiver_port: int, requests: int,
                  concurrency: int, spans: int) -> float:
    """Spans per gateway CPU-second for one load run."""
    sink.spans = 0
    cpu_before = cpu_seconds(gateway.pid)
    sent = await load(receiver_port, requests, concurrency, spans)
    deadline = time.monotonic() + 60
    while sink.spans < sent["items"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return sink.spans / (cpu_seconds(gateway.pid) - cpu_before)


class _Gateway:
    def __init__(self, sink_port: int, workdir: Path, name: str) -> None:
        self.receiver_port, self.admin_port = free_port(), free_port()
        config = yaml.safe_load(gateway_config(self.receiver_port, sink_port, free_port(), processors={
            "memory_limiter": {"check_interval": "1s", "limit_mib": 4000}, "batch": BATCH}))
        config["service"]["admin"] = {"endpoint": f"127.0.0.1:{self.admin_port}", "token": TOKEN}
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.process = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)])
        os.sched_setaffinity(self.process.pid, {0})

    async def ready(self, spans: int) -> None:
        await wait_for_port(self.receiver_port, self.process)
        await wait_for_port(self.admin_port, self.process)
        await load(self.receiver_port, 50, 4, spans)  # warm up

    async def measure(self, sink: CountingSink, requests: int, concurrency: int, spans: int) -> float:
        return await measure(sink, self.process, self.receiver_port, requests, concurrency, spans)

    async def taps_attached(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"http://127.0.0.1:{self.admin_port}/api/stats",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
            return int((await answer.json())["gateway"]["taps_attached"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def run(requests: int, concurrency: int, spans: int, rounds: int) -> dict[str, list[float]]:
    sink = CountingSink()
    await sink.server.start()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-tap-"))
    a = _Gateway(sink.port, workdir, "never-tapped")
    b = _Gateway(sink.port, workdir, "tapped")
    figures: dict[str, list[float]] = {"A never tapped": [], "B tap attached (100 items/s)": [],
                                       "B tap detached": []}
    try:
        await a.ready(spans)
        await b.ready(spans)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{b.admin_port}/api/tap?component=batch&rate=100",
                                   headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
                await stream.content.readline()  # the header: attached

                async def drain() -> None:
                    async for _ in stream.content:
                        pass

                reader = asyncio.create_task(drain())
                figures["B tap attached (100 items/s)"].append(await b.measure(sink, requests, concurrency, spans))
                reader.cancel()
            for _ in range(100):  # the gateway notices the client left and detaches
                if await b.taps_attached(session) == 0:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the tap is still attached after its client left")
        order = [(a, "A never tapped"), (b, "B tap detached")]
        for i in range(rounds):
            for gateway, name in (order if i % 2 == 0 else order[::-1]):  # A B, B A, A B, ...
                figures[name].append(await gateway.measure(sink, requests, concurrency, spans))
    finally:
        a.stop()
        b.stop()
        await sink.server.stop(None)
    return figures


def main() -> None:
    args, _payloads, ceiling = prepare(__doc__, requests=1000, options=lambda parser: parser.add_argument(
        "--rounds", type=int, default=6, help="rounds per gateway (default 6)"))
    rounds = args.rounds
    figures = asyncio.run(run(args.requests, args.concurrency, args.spans, rounds))
    print(heading("tap"))
    print(f"  workload: {rounds} interleaved rounds per gateway of {args.requests} requests x {args.spans} spans, "
          f"concurrency {args.concurrency}; OTLP/gRPC -> memory_limiter -> batch -> OTLP/gRPC")
    print(f"  ceiling (parse + serialize, 1 core):     {ceiling:>10,.0f} spans/s")
    base = statistics.median(figures["A never tapped"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  per gateway CPU-second, {name + ':':<30}{median:>10,.0f} spans/s median of {len(values)} "
              f"({min(values):,.0f} to {max(values):,.0f}; {median / ceiling:.0%} of ceiling, "
              f"{median / base - 1:+.1%} vs A)")
    noise = (max(figures["A never tapped"]) - min(figures["A never tapped"])) / base
    cost = 1 - statistics.median(figures["B tap detached"]) / base
    print(f"  detached tap costs {cost:+.1%} of A's throughput; A's own spread (the noise floor) is {noise:.1%}")


if __name__ == "__main__":
    main()
