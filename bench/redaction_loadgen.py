"""Load generator for the redaction benchmark: replays pre-serialized OTLP trace or log requests over gRPC.

Run in its own process (the benchmark pins it to the other core):
    python -m bench.redaction_loadgen --target 127.0.0.1:4317 --signal logs --pii 0.01 --requests 500
Prints one JSON line: requests and items sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
from grpc import aio

from bench.redaction_workload import log_payloads, trace_payloads

EXPORT = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
          "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}


async def replay(target: str, signal: str, payloads: list[bytes], requests: int, concurrency: int,
                 items: int) -> dict:
    channel = aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT[signal], request_serializer=None, response_deserializer=None)
    await channel.channel_ready()
    next_index = 0
    failures: dict[str, int] = {}

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests:
            index = next_index
            next_index += 1
            try:
                await export(payloads[index % len(payloads)], timeout=60)
            except grpc.RpcError as exc:
                code = exc.code().name if hasattr(exc, "code") else "ERROR"
                failures[code] = failures.get(code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await channel.close()
    failed = sum(failures.values())
    return {"requests": requests, "items": (requests - failed) * items, "failures": failures,
            "elapsed_s": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--signal", choices=sorted(EXPORT), default="traces")
    parser.add_argument("--pii", type=float, default=0.01, help="share of items carrying personal data")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--items", type=int, default=500)
    args = parser.parse_args()
    build = trace_payloads if args.signal == "traces" else log_payloads
    payloads = build(32, args.items, args.pii)
    result = asyncio.run(replay(args.target, args.signal, payloads, args.requests, args.concurrency, args.items))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
