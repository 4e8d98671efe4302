"""Benchmark: a large registry in span_metrics and the prometheus exporter, what it costs in memory and how long
the event loop is held while it is flushed and scraped.

In one process, on one event loop, as the gateway runs them: ``--series`` spans with an id in the span name into
span_metrics (histogram off, limit raised to hold them), as many gauges with a user id label into the exporter,
then a span_metrics flush into the exporter and a scrape of the exporter's ``/metrics`` over HTTP. Figures, on
this machine and in this run:
- RSS per series: span_metrics' state, the exporter's gauges, and the exporter's series of the flush;
- the longest the event loop went without running a 5 ms timer: while idle (the ceiling: what the machine
  itself costs), while span_metrics flushes, while ``/metrics`` is scraped.

    python -m bench.large_registry [--series 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host import gcpolicy
from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import make_host, make_traces, settings_for
from plugins.connectors.span_metrics.connector import SpanMetricsConnector
from plugins.connectors.span_metrics.factory import factory as span_metrics_factory
from plugins.exporters.prometheus.exporter import PrometheusExporter
from plugins.exporters.prometheus.factory import factory as prometheus_factory

PER_REQUEST = 10_000
TICK_S = 0.005


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def spans(start: int, count: int) -> ExportTraceServiceRequest:
    batch = make_traces(count, spans_per_trace=1)
    for i, span in enumerate(batch.resource_spans[0].scope_spans[0].spans):
        span.name = f"GET /users/{start + i}"
    return batch


def gauges(start: int, count: int) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="queue_depth")
    for i in range(start, start + count):
        point = metric.gauge.data_points.add(as_double=i, time_unix_nano=1_700_000_000_000_000_000)
        point.attributes.add(key="user.id").value.string_value = f"user-{i}"
    return request


async def longest_stall(work: Callable[[], Awaitable[Any]]) -> float:
    """The longest gap between two runs of a 5 ms timer while ``work`` runs, less the 5 ms."""
    longest = 0.0
    done = False

    async def watch() -> None:
        nonlocal longest
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            longest = max(longest, time.perf_counter() - started - TICK_S)

    watcher = asyncio.create_task(watch())
    try:
        await work()
    finally:
        done = True
        await watcher
    return longest


async def run(series: int) -> dict[str, float]:
    gcpolicy.install()  # as otelgw run does
    telemetry = Telemetry()
    exporter = PrometheusExporter(
        settings_for(Kind.EXPORTER, "prometheus", Signal.METRICS, telemetry),
        decode(prometheus_factory.create_default_config(),
               {"endpoint": "127.0.0.1:0", "max_series": 0, "metric_expiration": "1h"}))
    await exporter.start(make_host(telemetry))
    connector = SpanMetricsConnector(
        settings_for(Kind.CONNECTOR, "span_metrics", Signal.TRACES, telemetry),
        decode(span_metrics_factory.create_default_config(),
               {"aggregation_cardinality_limit": 2 * series, "histogram": {"disable": True},
                "metrics_flush_interval": "1h"}), exporter)
    figures: dict[str, float] = {}
    try:
        figures["idle"] = await longest_stall(lambda: asyncio.sleep(2))
        before = rss_bytes()
        for start in range(0, series, PER_REQUEST):
            await connector.consume_traces(spans(start, PER_REQUEST))
        figures["span_metrics_bytes"] = (rss_bytes() - before) / series
        before = rss_bytes()
        for start in range(0, series, PER_REQUEST):
            await exporter.consume_metrics(gauges(start, PER_REQUEST))
        figures["gauge_bytes"] = (rss_bytes() - before) / series
        before = rss_bytes()
        figures["flush"] = await longest_stall(connector.flush)
        figures["flushed_bytes"] = (rss_bytes() - before) / series

        async def scrape() -> None:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://{exporter.address}/metrics", headers={"Accept-Encoding": "identity"}) as response:
                figures["page_mib"] = len(await response.read()) / 2**20

        figures["scrape"] = await longest_stall(scrape)
    finally:
        await exporter.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=200_000, help="series per source (a multiple of 10,000)")
    args = parser.parse_args()
    series = max(PER_REQUEST, args.series // PER_REQUEST * PER_REQUEST)
    figures = asyncio.run(run(series))
    print(f"otelgw large-registry benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} "
          f"{os.cpu_count()} cores  python {platform.python_version()}")
    print(f"  {series:,} series per source (span_metrics and a gauge), {2 * series:,} served on a "
          f"{figures['page_mib']:,.0f} MiB page")
    print(f"  RSS per series: span_metrics {figures['span_metrics_bytes']:,.0f} B, exporter gauge "
          f"{figures['gauge_bytes']:,.0f} B, exporter span_metrics series {figures['flushed_bytes']:,.0f} B")
    print("  longest event-loop stall:")
    print(f"    idle (ceiling):             {figures['idle'] * 1000:>7,.0f} ms")
    print(f"    span_metrics flush:         {figures['flush'] * 1000:>7,.0f} ms")
    print(f"    /metrics scrape:            {figures['scrape'] * 1000:>7,.0f} ms")


if __name__ == "__main__":
    main()
