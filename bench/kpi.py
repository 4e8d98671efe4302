"""Benchmark: span_metrics and the kpi connector (the three packs of configs/kpi), next to the ceiling.

Figures, all on one core of this machine and measured in this run:
- ceiling: ``ExportTraceServiceRequest`` parse + serialize of the same requests;
- in process: parse + span_metrics (the Collector's defaults), parse + the three KPI packs, parse + both;
  the aggregate is built (as at a flush) after every pass over the 64 requests, i.e. every ~32K spans;
- end to end: OTLP/gRPC in -> span_metrics + the three packs -> prometheus exporter, the gateway pinned to core 0
  and the load generator on core 1 (spans per wall second and per gateway CPU-second), then a check that the
  exporter's traces_span_metrics_calls_total adds up to every span sent;
- a high-cardinality stream (a user id in every span name and queue name): peak series held and peak memory
  (RSS growth of a fresh process) with the shipped limits, and with the limits off for comparison.

The mix: 4 requests in 5 carry generic API spans that no pack matches, 1 in 5 carries call-centre, AI-agent or
CRM spans (bench/kpi_load.py).

    python -m bench.kpi [--requests 2000] [--concurrency 16] [--stream 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.kpi_load import mixed_payloads
from bench.passthrough import cpu_seconds, free_port, measure_ceiling, wait_for_port
from gateway.configtypes import decode
from plugins.connectors.kpi.engine import KpiEngine
from plugins.connectors.kpi.factory import factory as kpi_factory
from plugins.connectors.span_metrics.aggregator import SpanAggregator
from plugins.connectors.span_metrics.factory import factory as span_metrics_factory

ROOT = Path(__file__).resolve().parent.parent
PACKS = ("callcenter", "llm_agent", "crm")
GOAL_SPANS_PER_S = 100_000  # tail_sampling + redaction + span_metrics together (the project's goal)


def pack_engine(pack: str, **overrides: Any) -> KpiEngine:
    raw = yaml.safe_load((ROOT / "configs/kpi" / f"{pack}.yaml").read_text())["connectors"][f"kpi/{pack}"]
    return KpiEngine(decode(kpi_factory.create_default_config(), {**raw, **overrides}))


def span_metrics(**overrides: Any) -> SpanAggregator:
    return SpanAggregator(decode(span_metrics_factory.create_default_config(), overrides))


def in_process(payloads: list[bytes], spans: int, make: Callable[[], list[Any]], seconds: float = 3.0) -> float:
    """Spans per second of parse + every consumer's add, with a build (a flush) after each pass."""
    consumers = make()
    adds = [getattr(c, "add_traces", None) or c.add for c in consumers]
    parse = ExportTraceServiceRequest.FromString
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for payload in payloads:
            batch = parse(payload)
            for add in adds:
                add(batch)
        for consumer in consumers:
            consumer.build()
        count += len(payloads)
    return count * spans / (time.perf_counter() - start)


def gateway_config(workdir: Path, receiver_port: int, prometheus_port: int, metrics_port: int) -> list[str]:
    override = workdir / "bench.yaml"
    override.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{receiver_port}"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
        connectors:
          # The generic spans carry no service.instance.id: key resources by service so that the series of one
          # service are one series (otherwise resources differing only in host.name collide in the exporter).
          spanmetrics: {{metrics_flush_interval: 1s, resource_metrics_key_attributes: [service.name]}}
          kpi/callcenter: {{metrics_flush_interval: 1s}}
          kpi/llm_agent: {{metrics_flush_interval: 1s}}
          kpi/crm: {{metrics_flush_interval: 1s}}
        exporters:
          prometheus: {{endpoint: "127.0.0.1:{prometheus_port}"}}
        service:
          telemetry: {{metrics: {{address: "127.0.0.1:{metrics_port}"}}, logs: {{level: warn}}}}
    """))
    return [str(ROOT / "configs/kpi" / f"{name}.yaml") for name in ("gateway", *PACKS)] + [str(override)]


def scraped_calls(prometheus_port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=30).read().decode()
    # Label values may hold braces (span names such as GET /api/orders/{id}): the value is the last field.
    return sum(float(m.group(1)) for m in re.finditer(r"^traces_span_metrics_calls_total\{.*\} (\S+)$", body,
                                                      re.MULTILINE))


async def end_to_end(requests: int, concurrency: int, spans: int) -> dict[str, Any]:
    receiver_port, prometheus_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-kpi-"))
    command = [sys.executable, "-m", "gateway", "run"]
    for path in gateway_config(workdir, receiver_port, prometheus_port, free_port()):
        command += ["--config", path]
    gateway = subprocess.Popen(command)
    os.sched_setaffinity(gateway.pid, {0})

    async def load(count: int) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.kpi_load", "--target", f"127.0.0.1:{receiver_port}", "--requests",
            str(count), "--concurrency", str(concurrency), "--spans", str(spans), stdout=asyncio.subprocess.PIPE)
        os.sched_setaffinity(process.pid, {1})
        out, _ = await process.communicate()
        return json.loads(out)  # type: ignore[no-any-return]

    try:
        await wait_for_port(receiver_port, gateway)
        warm = await load(50)
        cpu_before = cpu_seconds(gateway.pid)
        sent = await load(requests)
        cpu = cpu_seconds(gateway.pid) - cpu_before
        await asyncio.sleep(2.5)  # two flushes: every span is in the exporter
        counted = scraped_calls(prometheus_port)
    finally:
        gateway.terminate()
        gateway.wait(30)
    return {"sent": sent, "warm": warm, "cpu_s": cpu, "counted": counted}


def cardinality_child(mode: str, stream: int) -> None:
    """In a fresh process: feed the high-cardinality stream, print peak series and peak RSS growth."""
    bounded = mode == "bounded"
    aggregator = span_metrics(aggregation_cardinality_limit=2000 if bounded else 0)
    engine = pack_engine("callcenter", **({} if bounded else {"aggregation_cardinality_limit": 10**9}))
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    service = rs.resource.attributes.add(key="service.name").value
    spans = rs.scope_spans.add().spans
    for _ in range(500):
        span = spans.add(kind=2, start_time_unix_nano=1, end_time_unix_nano=2_000_000)
        queue = span.attributes.add(key="contact.queue").value
        queue.string_value = ""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_series = 0
    for offset in range(0, stream, 500):
        service.string_value = f"service-{offset // 500 % 4}"
        for i, span in enumerate(spans):
            user = offset + i
            span.name = "contact.queue" if i % 2 else f"GET /users/{user}"
            span.attributes[0].value.string_value = f"queue-{user}"
        aggregator.add(request)
        engine.add_traces(request)
        if offset % 20_000 == 0:
            aggregator.build()
            engine.build()
        peak_series = max(peak_series, aggregator.series_count + engine.series_count)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"series": peak_series, "rss_mib": grown_kib / 1024,
                      "overflowed": aggregator.overflowed + engine.overflowed}))


def cardinality(stream: int) -> dict[str, dict[str, Any]]:
    results = {}
    for mode in ("bounded", "unbounded"):
        out = subprocess.run([sys.executable, "-m", "bench.kpi", "--cardinality-child", mode, "--stream",
                              str(stream)], capture_output=True, check=True, text=True).stdout
        results[mode] = json.loads(out)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--stream", type=int, default=100_000, help="spans in the high-cardinality stream")
    parser.add_argument("--cardinality-child", choices=("bounded", "unbounded"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    if args.cardinality_child:
        cardinality_child(args.cardinality_child, args.stream)
        return
    payloads = mixed_payloads(64, args.spans)
    ceiling = measure_ceiling(payloads, args.spans)
    packs = [lambda: [pack_engine(p) for p in PACKS]]
    span_only = in_process(payloads, args.spans, lambda: [span_metrics()])
    kpi_only = in_process(payloads, args.spans, packs[0])
    both = in_process(payloads, args.spans, lambda: [span_metrics(), *packs[0]()])
    os.sched_setaffinity(0, {1})
    e2e = asyncio.run(end_to_end(args.requests, args.concurrency, args.spans))
    sent_spans = e2e["sent"]["items"] + e2e["warm"]["items"]
    wall = e2e["sent"]["items"] / e2e["sent"]["elapsed_s"]
    per_core = e2e["sent"]["items"] / e2e["cpu_s"]
    high = cardinality(args.stream)

    def pct(value: float) -> str:
        return f"({value / ceiling:.0%} of ceiling)"

    print(f"otelgw span_metrics + kpi benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} "
          f"{os.cpu_count()} cores  python {platform.python_version()}")
    per_span = sum(len(p) for p in payloads) / len(payloads) / args.spans
    print(f"  workload: {args.spans}-span requests, {per_span:.0f} B/span, 1 in 5 requests with KPI-pack spans")
    print(f"  ceiling (parse + serialize, 1 core):            {ceiling:>10,.0f} spans/s")
    print(f"  parse + span_metrics, in process:               {span_only:>10,.0f} spans/s  {pct(span_only)}")
    print(f"  parse + kpi (3 packs), in process:              {kpi_only:>10,.0f} spans/s  {pct(kpi_only)}")
    print(f"  parse + span_metrics + kpi (3 packs):           {both:>10,.0f} spans/s  {pct(both)}")
    print("  OTLP/gRPC -> span_metrics + 3 packs -> prometheus exporter:")
    print(f"    wall:                                         {wall:>10,.0f} spans/s  {pct(wall)}")
    print(f"    per gateway CPU-second:                       {per_core:>10,.0f} spans/s  {pct(per_core)}  "
          f"(goal for the full path {GOAL_SPANS_PER_S:,})")
    print(f"    spans sent {sent_spans:,}, counted by traces_span_metrics_calls_total {e2e['counted']:,.0f}, "
          f"failures: {e2e['sent']['failures'] or 'none'}")
    print(f"  high-cardinality stream, {args.stream:,} spans each with a new user id in span name and queue:")
    for mode, label in (("bounded", "shipped limits (span_metrics 2000/resource, kpi 500/KPI)"),
                        ("unbounded", "limits off")):
        result = high[mode]
        print(f"    {label + ':':<58} peak {result['series']:>7,} series, "
              f"+{result['rss_mib']:.0f} MiB RSS, {result['overflowed']:,} items into overflow series")


if __name__ == "__main__":
    main()
