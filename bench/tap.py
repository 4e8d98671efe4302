"""Benchmark: what a tap costs when no one is watching (the goal: at most 2%), and while one is attached.

One run of a gateway is too noisy to show 2%: on a shared machine two runs of the same gateway differ by more,
and two gateway processes differ from each other. So two identical gateways (OTLP/gRPC in -> memory_limiter ->
batch -> OTLP/gRPC out, both pinned to core 0) are measured in spans per gateway CPU-second (the CPU the gateway
process used, so the load generator and the sink on core 1 do not count), next to the parse + serialize ceiling
measured in the same run, in rounds of back-to-back pairs in ABBA order (A B, B A, ...: a drift of the machine
falls on both alike):

- N rounds before anything is tapped: B's throughput over A's, per round (the two processes' own difference);
- N rounds with a tap attached to B (``GET /api/tap?component=batch``, 100 items/s sampled, read and thrown
  away, as ``otelgw tap`` does); then the tap is detached (checked: ``taps_attached`` is 0 in ``/api/stats``);
- N rounds again: B over A once more.

The cost of a detached tap is the median B/A ratio after against the median before (a difference of
differences: the machine's drift and the processes' own difference cancel out); the cost of an attached one is
the median B/A ratio while attached against the same median before.

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


async def _rounds(sink: CountingSink, a: _Gateway, b: _Gateway, rounds: int, requests: int, concurrency: int,
                  spans: int, figures: dict[str, list[float]], b_name: str) -> list[float]:
    """``rounds`` back-to-back pairs in ABBA order; returns each pair's B/A ratio."""
    ratios = []
    for i in range(rounds):
        pair = {}
        for gateway, name in ((a, "A"), (b, "B")) if i % 2 == 0 else ((b, "B"), (a, "A")):
            pair[name] = await gateway.measure(sink, requests, concurrency, spans)
        figures["A never tapped"].append(pair["A"])
        figures[b_name].append(pair["B"])
        ratios.append(pair["B"] / pair["A"])
    return ratios


async def run(requests: int, concurrency: int, spans: int, rounds: int
              ) -> tuple[dict[str, list[float]], list[float], list[float], list[float]]:
    """Figures per gateway, and the rounds' B/A ratios before the tap, while attached and after it was detached."""
    sink = CountingSink()
    await sink.server.start()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-tap-"))
    a = _Gateway(sink.port, workdir, "never-tapped")
    b = _Gateway(sink.port, workdir, "tapped")
    figures: dict[str, list[float]] = {"A never tapped": [], "B before its tap": [],
                                       "B tap attached (100 items/s)": [], "B tap detached": []}
    try:
        await a.ready(spans)
        await b.ready(spans)
        before = await _rounds(sink, a, b, rounds, requests, concurrency, spans, figures, "B before its tap")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{b.admin_port}/api/tap?component=batch&rate=100",
                                   headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
                await stream.content.readline()  # the header: attached

                async def drain() -> None:
                    async for _ in stream.content:
                        pass

                reader = asyncio.create_task(drain())
                attached = await _rounds(sink, a, b, rounds, requests, concurrency, spans, figures,
                                         "B tap attached (100 items/s)")
                if reader.done():  # the stream ended early: the rounds did not measure an attached tap
                    raise RuntimeError(f"the tap's stream ended during the attached rounds: {reader.exception()}")
                reader.cancel()
            for _ in range(100):  # the gateway notices the client left and detaches
                if await b.taps_attached(session) == 0:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the tap is still attached after its client left")
        after = await _rounds(sink, a, b, rounds, requests, concurrency, spans, figures, "B tap detached")
    finally:
        a.stop()
        b.stop()
        await sink.server.stop(None)
    return figures, before, attached, after


def main() -> None:
    args, _payloads, ceiling = prepare(__doc__, requests=1000, options=lambda parser: parser.add_argument(
        "--rounds", type=int, default=6, help="rounds before the tap, while attached and after it (default 6 each)"))
    figures, before, attached, after = asyncio.run(run(args.requests, args.concurrency, args.spans, args.rounds))
    print(heading("tap"))
    print(f"  workload: 3 x {args.rounds} interleaved rounds of {args.requests} requests x {args.spans} "
          f"spans per gateway, concurrency {args.concurrency}; OTLP/gRPC -> memory_limiter -> batch -> OTLP/gRPC")
    print(f"  ceiling (parse + serialize, 1 core):     {ceiling:>10,.0f} spans/s")
    base = statistics.median(figures["A never tapped"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  per gateway CPU-second, {name + ':':<30}{median:>10,.0f} spans/s median of {len(values)} "
              f"({min(values):,.0f} to {max(values):,.0f}; {median / ceiling:.0%} of ceiling, "
              f"{median / base - 1:+.1%} vs A)")
    cost = statistics.median(after) / statistics.median(before) - 1
    spread = [r / statistics.median(before) - 1 for r in after]
    print(f"  B/A per round, median: {statistics.median(before):.3f} before the tap, "
          f"{statistics.median(attached):.3f} while attached, {statistics.median(after):.3f} after it was detached")
    attached_cost = statistics.median(attached) / statistics.median(before) - 1
    print(f"  attached tap (100 items/s): {attached_cost:+.1%} (a negative figure is a cost)")
    print(f"  detached tap: {cost:+.1%} (a negative figure is a cost; the rounds after it range "
          f"{min(spread):+.1%} to {max(spread):+.1%} against the ratio before)")


if __name__ == "__main__":
    main()
