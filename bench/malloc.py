"""Benchmark: what ``gateway._host.mallocpolicy`` saves a gRPC server on the realistic pipeline's requests.

A server that does nothing with its requests (grpc.aio, as the otlp receiver, one core) is sent the same
requests (``bench.pipeline_workload``: 500 spans, about 260 kB each) by a client on the other core, with glibc's
allocator settings as they are and as ``otelgw run`` sets them, in turns. Printed per setting: the server's CPU
microseconds per span received (measured in the server, after a warm-up) and its page faults per request, next to
the ceiling (protobuf parse + serialize of the same requests) measured in the same run.

    python -m bench.malloc [--requests 1500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys

import grpc

from bench.passthrough import heading, measure_ceiling
from bench.pipeline_workload import SPANS_PER_REQUEST, make_payloads

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WARM_UP = 100

SERVER = """
import asyncio, json, os, resource, sys, time
import grpc
from gateway._host import mallocpolicy
os.sched_setaffinity(0, {0})
applied = mallocpolicy.install() if sys.argv[1] == "on" else False

async def main():
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    seen = {"n": 0}

    async def export(request, context):
        seen["n"] += 1
        if seen["n"] == WARM_UP:
            seen["cpu"], seen["faults"] = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return b""

    service = "opentelemetry.proto.collector.trace.v1.TraceService"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        service, {"Export": grpc.unary_unary_rpc_method_handler(export)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    counted = seen["n"] - WARM_UP
    print(json.dumps({"applied": applied, "cpu_s": time.process_time() - seen["cpu"], "requests": counted,
                      "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - seen["faults"]}), flush=True)
    await server.stop(0)

asyncio.run(main())
""".replace("WARM_UP", str(WARM_UP))


async def _send(port: int, payloads: list[bytes], requests: int, concurrency: int = 16) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await call(payloads[i % len(payloads)], timeout=60)

        await asyncio.gather(*(one(i) for i in range(requests)))


def serve_once(mode: str, payloads: list[bytes], requests: int, env: dict[str, str] | None = None,
               ) -> dict[str, float]:
    """Start the server with the settings ``on`` or ``off``, send it ``requests`` after the warm-up, and return
    what it measured: ``applied``, ``cpu_s``, ``requests`` and ``faults`` (page faults) after the warm-up."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, **(env or {})})
    try:
        assert server.stdout is not None and server.stdin is not None
        port = int(server.stdout.readline())
        asyncio.run(_send(port, payloads, requests + WARM_UP))
        server.stdin.write("done\n")
        server.stdin.flush()
        result: dict[str, float] = json.loads(server.stdout.readline())
        return result
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    payloads = make_payloads(16)
    ceiling = measure_ceiling(payloads, SPANS_PER_REQUEST)
    os.sched_setaffinity(0, {1})
    figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            result = serve_once(mode, payloads, args.requests)
            figures[mode].append((result["cpu_s"] / (result["requests"] * SPANS_PER_REQUEST) * 1e6,
                                  result["faults"] / result["requests"]))
    print(heading("gRPC receive, allocator settings"))
    print(f"  workload: {args.requests} requests x {SPANS_PER_REQUEST} spans ({len(payloads[0]) / 1000:.0f} kB), "
          f"concurrency 16, a server that does nothing with them; {args.rounds} rounds in turns")
    print(f"  ceiling (parse + serialize, 1 core):  {ceiling:>10,.0f} spans/s  ({1e6 / ceiling:.2f} us/span)")
    for mode, label in (("off", "glibc defaults"), ("on", "otelgw run's settings")):
        runs = figures[mode]
        print(f"  {label:<22} server CPU per span (us): {', '.join(f'{cpu:.2f}' for cpu, _ in runs)};  "
              f"page faults per request: {', '.join(f'{faults:.1f}' for _, faults in runs)}")


if __name__ == "__main__":
    main()
