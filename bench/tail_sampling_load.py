"""Load for the tail sampling benchmark: the realistic requests of ``bench.workload``, but every trace id unique.

Replaying a fixed set of requests (as ``bench.loadgen`` does) would send the same traces again and again, which a
tail sampler answers from its decision caches. Here request ``i`` is one of 64 pre-serialized requests with the
first four bytes of every trace id overwritten by ``i``: new traces each time, same sizes and shapes, and the
rewrite is a few hundred byte-slice assignments, cheap enough not to slow the sender.

    python -m bench.tail_sampling_load --target 127.0.0.1:4317 --requests 2000 --concurrency 16
Prints one JSON line: requests and items sent, failures, elapsed seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.loadgen import replay
from bench.workload import make_payloads


class UniqueTraces:
    """Request ``i``: base payload ``i % 64`` with ``i`` written over the first 4 bytes of every trace id."""

    def __init__(self, spans: int, count: int = 64, payloads: list[bytes] | None = None) -> None:
        self.payloads = payloads if payloads is not None else make_payloads(count, spans)
        self.offsets: list[list[int]] = []
        for payload in self.payloads:
            request = ExportTraceServiceRequest.FromString(payload)
            offsets, pos = [], 0
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        pos = payload.index(span.trace_id, pos)
                        offsets.append(pos)
                        pos += 16
            self.offsets.append(offsets)

    def __call__(self, index: int) -> bytes:
        base = index % len(self.payloads)
        out = bytearray(self.payloads[base])
        stamp = (index + 1).to_bytes(4, "big")
        for offset in self.offsets[base]:
            out[offset:offset + 4] = stamp
        return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--connections", type=int, default=1, help="TCP connections to spread the requests over")
    args = parser.parse_args()
    result = asyncio.run(replay(args.target, UniqueTraces(args.spans), args.requests, args.concurrency, args.spans,
                                connections=args.connections))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
