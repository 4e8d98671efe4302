"""Load generator for the redaction benchmark: replays pre-serialized OTLP trace or log requests over gRPC.

Run in its own process (the benchmark pins it to the other core):
    python -m bench.redaction_loadgen --target 127.0.0.1:4317 --signal logs --pii 0.01 --requests 500
Prints one JSON line: requests and items sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench import loadgen
from bench.redaction_workload import log_payloads, trace_payloads

EXPORT = {"traces": loadgen.EXPORT, "logs": loadgen.EXPORT_LOGS}


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
    result = asyncio.run(loadgen.replay(args.target, payloads, args.requests, args.concurrency, args.items,
                                        method=EXPORT[args.signal], timeout=60))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
