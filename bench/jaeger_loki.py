"""Benchmark: the jaeger and loki exporters' translations on one core, next to the ceiling measured in this run.

Figures printed, all on one core, from serialized OTLP requests (as an exporter's input was once received):
- traces ceiling: ``ExportTraceServiceRequest`` parse + serialize of the same requests (what ``otlp_grpc``, or
  ``jaeger`` with ``protocol: otlp``, costs at best);
- jaeger: parse + translation into serialized api_v2 ``PostSpansRequest`` messages (``protocol: grpc``);
- logs ceiling: ``ExportLogsServiceRequest`` parse + serialize of the same log requests;
- loki: parse + translation (labels, json lines, structured metadata) + encoding, protobuf+snappy and JSON+gzip.

Rounds of the ceiling and of the translation alternate and the best round of each is kept, so a noisy machine
moves both figures alike and the ratio holds.

    python -m bench.jaeger_loki [--seconds 1.0] [--rounds 5] [--cpu 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import logs_workload, workload
from plugins.exporters.jaeger.translate import Translator as JaegerTranslator
from plugins.exporters.loki.config import Config as LokiConfig
from plugins.exporters.loki.exporter import encode_json, encode_protobuf
from plugins.exporters.loki.translate import Translator as LokiTranslator


def rate(work: Callable[[bytes], object], payloads: list[bytes], items: int, seconds: float) -> float:
    """Items per second through ``work`` over the payloads, for about ``seconds``."""
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for payload in payloads:
            work(payload)
        count += len(payloads)
    return count * items / (time.perf_counter() - start)


def best_of(candidates: dict[str, Callable[[bytes], object]], payloads: list[bytes], items: int,
            seconds: float, rounds: int) -> dict[str, float]:
    for work in candidates.values():  # warm up: caches, allocator, CPU frequency
        rate(work, payloads, items, seconds / 4)
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(rounds):
        for name, work in candidates.items():
            best[name] = max(best[name], rate(work, payloads, items, seconds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin this process to")
    parser.add_argument("--items", type=int, default=500, help="spans or log records per request")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    spans = workload.make_payloads(64, args.items)
    jaeger = JaegerTranslator()
    parse_spans = ExportTraceServiceRequest.FromString
    traces = best_of({
        "ceiling": lambda p: parse_spans(p).SerializeToString(),
        "jaeger": lambda p: jaeger.translate(parse_spans(p)),
    }, spans, args.items, args.seconds, args.rounds)

    records = logs_workload.make_payloads(64, args.items)
    loki = LokiTranslator(LokiConfig(endpoint="http://loki:3100/loki/api/v1/push"))
    parse_logs = ExportLogsServiceRequest.FromString

    def loki_push(encode: Callable[..., bytes]) -> Callable[[bytes], object]:
        def work(payload: bytes) -> object:
            tenants, _, _ = loki.translate(parse_logs(payload))
            return [encode(streams) for streams in tenants.values()]
        return work

    logs = best_of({
        "ceiling": lambda p: parse_logs(p).SerializeToString(),
        "protobuf": loki_push(encode_protobuf),
        "json": loki_push(encode_json),
    }, records, args.items, args.seconds, args.rounds)

    print(f"otelgw jaeger/loki translation benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} "
          f"{os.cpu_count()} cores  python {platform.python_version()}  (1 core, best of {args.rounds} rounds)")
    print(f"  traces: {args.items} spans/request, {len(spans[0]) / args.items:.0f} B/span")
    print(f"    {'ceiling (parse + serialize):':<42}{traces['ceiling']:>10,.0f} spans/s")
    print(f"    {'jaeger grpc (parse + translate):':<42}{traces['jaeger']:>10,.0f} spans/s  "
          f"({traces['jaeger'] / traces['ceiling']:.0%} of ceiling)")
    print(f"  logs: {args.items} records/request, {len(records[0]) / args.items:.0f} B/record")
    print(f"    {'ceiling (parse + serialize):':<42}{logs['ceiling']:>10,.0f} records/s")
    for name, label in (("protobuf", "loki protobuf+snappy (parse + translate):"),
                        ("json", "loki json+gzip (parse + translate):")):
        print(f"    {label:<42}{logs[name]:>10,.0f} records/s  "
              f"({logs[name] / logs['ceiling']:.0%} of ceiling)")


if __name__ == "__main__":
    main()
