"""Load generator: replays pre-serialized OTLP trace requests over gRPC as fast as the target accepts them.

Run in its own process (the benchmark pins it to the other core) so the gateway's core does only gateway work:
    python -m bench.loadgen --target 127.0.0.1:4317 --requests 2000 --concurrency 16
Prints one JSON line: requests and items sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from bench.workload import make_payloads

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
EXPORT_LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


async def replay(target: str, payloads: list[bytes] | Callable[[int], bytes], requests: int, concurrency: int,
                 spans: int, method: str = EXPORT, timeout: float = 30, ca_file: str | None = None,
                 connections: int = 1) -> dict:
    """Send ``requests`` requests (``payloads`` cycled, or built by ``payloads(i)``) from ``concurrency`` workers.

    ``spans`` is the number of items per request (spans, or log records with ``method=EXPORT_LOGS``).
    ``ca_file``: connect with TLS, trusting this CA (else plaintext). ``connections``: TCP connections the senders
    take turns on (each channel gets its own, so a kernel spreading connections over workers sees several).
    """
    request_for = payloads if callable(payloads) else (lambda i: payloads[i % len(payloads)])
    # A local subchannel pool: without it, channels to one target share one connection.
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
    channels = []
    for _ in range(connections):
        if ca_file:
            with open(ca_file, "rb") as file:
                credentials = grpc.ssl_channel_credentials(file.read())
            channels.append(aio.secure_channel(target, credentials, options=options))
        else:
            channels.append(aio.insecure_channel(target, options=options))
    exports = [c.unary_unary(method, request_serializer=None, response_deserializer=None) for c in channels]
    for channel in channels:
        await channel.channel_ready()
    next_index = 0
    failures: dict[str, int] = {}

    async def worker(export: Callable[..., Any]) -> None:
        nonlocal next_index
        while next_index < requests:
            index = next_index
            next_index += 1
            try:
                await export(request_for(index), timeout=timeout)
            except grpc.RpcError as exc:
                code = exc.code().name if hasattr(exc, "code") else "ERROR"
                failures[code] = failures.get(code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(exports[i % connections]) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    for channel in channels:
        await channel.close()
    failed = sum(failures.values())
    return {"requests": requests, "items": (requests - failed) * spans, "failures": failures,
            "elapsed_s": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--ca-file", default=None, help="connect with TLS, trusting this CA certificate")
    args = parser.parse_args()
    payloads = make_payloads(64, args.spans)
    result = asyncio.run(replay(args.target, payloads, args.requests, args.concurrency, args.spans,
                                ca_file=args.ca_file))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
