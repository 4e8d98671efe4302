"""Load generator: replays pre-serialized OTLP trace requests over gRPC as fast as the target accepts them.

Run in its own process (the benchmark pins it to the other core) so the gateway's core does only gateway work:
    python -m bench.loadgen --target 127.0.0.1:4317 --requests 2000 --concurrency 16
Prints one JSON line: requests and spans sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
from grpc import aio

from bench.workload import make_payloads

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


async def replay(target: str, payloads: list[bytes], requests: int, concurrency: int, spans: int) -> dict:
    channel = aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    await channel.channel_ready()
    next_index = 0
    failures: dict[str, int] = {}

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests:
            index = next_index
            next_index += 1
            try:
                await export(payloads[index % len(payloads)], timeout=30)
            except grpc.RpcError as exc:
                code = exc.code().name if hasattr(exc, "code") else "ERROR"
                failures[code] = failures.get(code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await channel.close()
    failed = sum(failures.values())
    return {"requests": requests, "spans": (requests - failed) * spans, "failures": failures,
            "elapsed_s": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    args = parser.parse_args()
    payloads = make_payloads(64, args.spans)
    result = asyncio.run(replay(args.target, payloads, args.requests, args.concurrency, args.spans))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
