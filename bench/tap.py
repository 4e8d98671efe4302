"""Benchmark: what a tap costs. One gateway (OTLP/gRPC in -> memory_limiter -> batch -> OTLP/gRPC out, pinned
to core 0) is measured three times in a row, in spans per gateway CPU-second next to the parse + serialize ceiling
measured in the same run:

- never tapped: as started;
- tap attached: ``GET /api/tap?component=batch`` streaming (100 items/s sampled, the rest skipped), read by this
  process and thrown away;
- detached: after the tap ended (checked: ``taps_attached`` is 0 in ``/api/stats``), twice; the data path is then
  exactly the one built at start (tests/gateway/test_tap.py checks that), so these should match the first figure
  within the noise of the machine, which the two detached runs show.

    python -m bench.tap [--requests 3000] [--concurrency 64]
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


async def run(requests: int, concurrency: int, spans: int) -> dict[str, float]:
    sink = CountingSink()
    await sink.server.start()
    receiver_port, admin_port = free_port(), free_port()
    config = yaml.safe_load(gateway_config(receiver_port, sink.port, free_port(), processors={
        "memory_limiter": {"check_interval": "1s", "limit_mib": 4000}, "batch": BATCH}))
    config["service"]["admin"] = {"endpoint": f"127.0.0.1:{admin_port}", "token": TOKEN}
    path = Path(tempfile.mkdtemp(prefix="otelgw-bench-tap-")) / "tap.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)])
    os.sched_setaffinity(gateway.pid, {0})
    figures: dict[str, float] = {}
    try:
        await wait_for_port(receiver_port, gateway)
        await wait_for_port(admin_port, gateway)
        await load(receiver_port, 50, 4, spans)  # warm up
        figures["never tapped"] = await measure(sink, gateway, receiver_port, requests, concurrency, spans)
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{admin_port}/api/tap?component=batch&rate=100",
                headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
            await stream.content.readline()  # the header: attached
            seen = 0

            async def drain() -> None:
                nonlocal seen
                async for _ in stream.content:
                    seen += 1

            reader = asyncio.create_task(drain())
            figures["tap attached (100 items/s)"] = await measure(sink, gateway, receiver_port, requests,
                                                                   concurrency, spans)
            reader.cancel()
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # the gateway notices the client left and detaches
                async with session.get(f"http://127.0.0.1:{admin_port}/api/stats",
                                       headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
                    if (await answer.json())["gateway"]["taps_attached"] == 0:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the tap is still attached after its client left")
        figures["detached again"] = await measure(sink, gateway, receiver_port, requests, concurrency, spans)
        # a second detached run: its difference to the first is the noise of this machine at this moment
        figures["detached again, second run"] = await measure(sink, gateway, receiver_port, requests, concurrency,
                                                              spans)
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
    return figures


def main() -> None:
    args, _payloads, ceiling = prepare(__doc__, requests=3000)
    figures = asyncio.run(run(args.requests, args.concurrency, args.spans))
    print(heading("tap"))
    print(f"  workload: {args.requests} requests x {args.spans} spans, concurrency {args.concurrency}; "
          f"OTLP/gRPC -> memory_limiter -> batch -> OTLP/gRPC")
    print(f"  ceiling (parse + serialize, 1 core):     {ceiling:>10,.0f} spans/s")
    base = figures["never tapped"]
    for name, value in figures.items():
        print(f"  per gateway CPU-second, {name + ':':<30}{value:>10,.0f} spans/s  ({value / ceiling:.0%} of ceiling, "
              f"{value / base - 1:+.1%} vs never tapped)")


if __name__ == "__main__":
    main()
