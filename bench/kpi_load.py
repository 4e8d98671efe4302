"""Load generator for bench.kpi: replays the KPI mix (generic API spans with call-centre, AI-agent and CRM spans
among them) over OTLP/gRPC, in its own process. Prints one JSON line like bench.loadgen.

    python -m bench.kpi_load --target 127.0.0.1:4317 --requests 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.kpi_workload import pack_workload
from bench.loadgen import replay
from bench.workload import make_request

#: One request in PACK_EVERY carries KPI-pack spans; the others are generic API spans no pack matches.
PACK_EVERY = 5


def pack_requests(spans: int, now_ns: int) -> list[ExportTraceServiceRequest]:
    """The workload's trace requests, each filled up to ``spans`` spans by repeating its own spans."""
    requests = []
    for source in pack_workload(now_ns).traces:
        request = ExportTraceServiceRequest()
        request.CopyFrom(source)
        out = request.resource_spans[0].scope_spans[0].spans
        originals = list(source.resource_spans[0].scope_spans[0].spans)
        del out[:]
        for i in range(spans):
            span = out.add()
            span.CopyFrom(originals[i % len(originals)])
            span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
        requests.append(request)
    return requests


def mixed_payloads(count: int = 64, spans: int = 500, seed: int = 7) -> list[bytes]:
    """``count`` serialized requests: every ``PACK_EVERY``-th one a KPI-pack request, the rest generic."""
    rng = random.Random(seed)
    packs = pack_requests(spans, time.time_ns())
    return [(packs[i // PACK_EVERY % len(packs)] if i % PACK_EVERY == 0 else make_request(rng, spans))
            .SerializeToString() for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    args = parser.parse_args()
    payloads = mixed_payloads(64, args.spans)
    result = asyncio.run(replay(args.target, payloads, args.requests, args.concurrency, args.spans))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
