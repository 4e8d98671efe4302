"""Scraping real targets the tests start: the prometheus_client app (app.py) and Debian's node exporter.

Values arriving at an OTLP sink, and through our ``prometheus`` exporter in a real Prometheus, must equal what the
target itself exposes, read here with prometheus_client's parser straight from the target.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from gateway._host.service import Service
from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
needs_node_exporter = pytest.mark.skipif(
    not Path(NODE_EXPORTER).is_file(),
    reason="Debian's prometheus-node-exporter is not installed (tests/install-test-servers.sh installs it as root)")

#: Series key: (metric name, labels without job/instance, le and quantile as numbers).
Key = tuple[str, frozenset[tuple[str, Any]]]


def _key(name: str, labels: dict[str, str]) -> Key:
    normal: dict[str, Any] = {k: v for k, v in labels.items() if k not in ("job", "instance")}
    for numeric in ("le", "quantile"):
        if numeric in normal:
            normal[numeric] = float(normal[numeric])
    return name, frozenset(normal.items())


def own_values(address: str) -> dict[Key, float]:
    """What the target exposes (text format), _created series left out."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return {_key(s.name, s.labels): float(s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if not s.name.endswith("_created")}


def otlp_values(request: Any) -> dict[Key, float]:
    """The OTLP points of one scrape, expanded back into the samples Prometheus would name."""
    values: dict[Key, float] = {}
    for rm in request.resource_metrics:
        for metric in (m for sm in rm.scope_metrics for m in sm.metrics):
            kind = metric.WhichOneof("data")
            for point in getattr(metric, kind).data_points:
                labels = {kv.key: kv.value.string_value for kv in point.attributes}
                if kind in ("gauge", "sum"):
                    values[_key(metric.name, labels)] = point.as_double
                elif kind == "histogram":
                    running = 0
                    for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=True):
                        running += count
                        values[_key(metric.name + "_bucket", {**labels, "le": str(bound)})] = float(running)
                    values[_key(metric.name + "_count", labels)] = float(point.count)
                    values[_key(metric.name + "_sum", labels)] = point.sum
                else:
                    for q in point.quantile_values:
                        values[_key(metric.name, {**labels, "quantile": str(q.quantile)})] = q.value
                    values[_key(metric.name + "_count", labels)] = float(point.count)
                    values[_key(metric.name + "_sum", labels)] = point.sum
    return values


def config(tmp_path: Path, sink: OtlpSink, targets: dict[str, str], *, exporter: bool = False) -> Path:
    exporters: dict[str, Any] = {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}}
    if exporter:
        exporters["prometheus"] = {"endpoint": "127.0.0.1:0"}
    jobs = [{"job_name": job, "scrape_interval": "500ms", "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()]
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "receivers": {"prometheus": {"config": {"scrape_configs": jobs}}},
        "exporters": exporters,
        "service": {"telemetry": {"metrics": {"address": ""}},
                    "pipelines": {"metrics": {"receivers": ["prometheus"], "exporters": list(exporters)}}}}))
    return path


def scrapes(sink: OtlpSink, job: str) -> list[Any]:
    """Requests from scrapes of ``job``, in arrival order."""
    found = []
    for request in sink.batches(Signal.METRICS):
        for rm in request.resource_metrics:
            if any(kv.key == "service.name" and kv.value.string_value == job for kv in rm.resource.attributes):
                found.append(request)
                break
    return found


def up(request: Any) -> float | None:
    for rm in request.resource_metrics:
        for metric in (m for sm in rm.scope_metrics for m in sm.metrics):
            if metric.name == "up":
                return metric.gauge.data_points[0].as_double
    return None


async def wait_for_scrape(sink: OtlpSink, job: str, count: int = 1, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(found := scrapes(sink, job)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} scrapes of {job} arrived within {timeout}s"
        await asyncio.sleep(0.1)
    return found


async def test_app_values_reach_the_sink_exactly_and_go_stale_when_it_stops(tmp_path, app) -> None:
    address, process = app
    sink = OtlpSink()
    await sink.start()
    service = Service.from_files([str(config(tmp_path, sink, {"app": address}))])
    try:
        await service.start()
        [first] = (await wait_for_scrape(sink, "app"))[:1]
        assert up(first) == 1.0
        expected = own_values(address)
        assert len(expected) == 20  # 2 counters, 2 gauges, 2 histograms of 5 buckets + sum + count, 1 summary
        got = otlp_values(first)
        assert {k: got.get(k) for k in expected} == expected
        metrics = {m.name: m for rm in first.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        assert metrics["app_requests_total"].sum.is_monotonic
        assert metrics["app_temperature_celsius"].unit == "celsius"  # OpenMetrics was negotiated: UNIT kept
        assert metrics["app_latency_seconds"].histogram.data_points[0].start_time_unix_nano > 0
        request = urllib.request.Request(f"http://{address}/metrics",
                                         headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        exposed = urllib.request.urlopen(request, timeout=5).read().decode()
        samples = sum(len(f.samples) for f in openmetrics_families(exposed))
        assert metrics["scrape_samples_scraped"].gauge.data_points[0].as_double == samples
        process.terminate()
        process.wait(10)
        deadline = time.monotonic() + 20
        while True:
            last = scrapes(sink, "app")[-1]
            if up(last) == 0.0:
                break
            assert time.monotonic() < deadline, "up never went to 0 after the target stopped"
            await asyncio.sleep(0.1)
        stale = [m for rm in last.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                 if m.name == "app_requests_total"]
        [points] = [m.sum.data_points for m in stale]
        assert len(points) == 2 and all(p.flags == pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK for p in points)
    finally:
        await service.shutdown()
        await sink.stop()


@needs_node_exporter
async def test_node_exporter_values_reach_the_sink(tmp_path, node_exporter) -> None:
    sink = OtlpSink()
    await sink.start()
    service = Service.from_files([str(config(tmp_path, sink, {"node": node_exporter}))])
    try:
        await service.start()
        [scrape] = (await wait_for_scrape(sink, "node"))[:1]
        assert up(scrape) == 1.0
        expected = own_values(node_exporter)
        got = otlp_values(scrape)
        assert set(expected) <= set(got)  # every series the exporter exposes arrives
        constant = [k for k in expected if k[0] in ("node_memory_MemTotal_bytes", "node_filesystem_size_bytes")
                    or k[0].startswith("node_exporter_build_info")]
        assert constant and {k: got[k] for k in constant} == {k: expected[k] for k in constant}
        cpu = {k for k in expected if k[0] == "node_cpu_seconds_total"}
        assert cpu and all(got[k] >= 0 for k in cpu)
    finally:
        await service.shutdown()
        await sink.stop()
