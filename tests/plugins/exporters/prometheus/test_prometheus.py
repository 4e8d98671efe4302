"""The prometheus exporter over HTTP: exposition formats, expiry on a timer, the series cap, promtool."""

from __future__ import annotations

import asyncio
import gzip
import logging
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client.exposition import choose_encoder, generate_latest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import make_host, settings_for
from plugins.exporters.prometheus.factory import factory

from .test_translation import T0, histogram_metric, number_metric, request

TLS = Path(__file__).resolve().parents[1] / "otlp_http" / "testdata"
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


async def exporter(telemetry: Telemetry | None = None, **overrides: Any) -> Any:
    config = decode(factory.create_default_config(), {"endpoint": "127.0.0.1:0", **overrides})
    instance = factory.create_metrics(settings_for(Kind.EXPORTER, "prometheus", Signal.METRICS, telemetry), config)
    await instance.start(make_host())
    return instance


async def scrape(instance: Any, accept: str = "", scheme: str = "http", **kwargs: Any) -> tuple[str, str]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{scheme}://{instance.address}/metrics", headers={"Accept": accept}, **kwargs) as response:
        assert response.status == 200
        return response.headers["Content-Type"], (await response.read()).decode()


def with_exemplar(metric: pb.Metric) -> pb.Metric:
    metric.histogram.data_points[0].exemplars.add(as_double=5, time_unix_nano=T0, trace_id=b"\x01" * 16,
                                                  span_id=b"\x02" * 8)
    return metric


async def test_text_exposition_by_default_with_target_info_and_help():
    instance = await exporter()
    try:
        await instance.consume_metrics(request(
            number_metric("sum", "http.requests", value=7, attributes={"http.method": "GET"}),
            with_exemplar(histogram_metric([1, 10], [1, 1, 0])),
            resource={"service.name": "api", "service.instance.id": "i-1", "host.name": "n1"}))
        content_type, body = await scrape(instance)
    finally:
        await instance.shutdown()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# HELP http_requests_total help text\n# TYPE http_requests_total counter\n" in body
    assert ('http_requests_total{http_method="GET",instance="i-1",job="api",otel_scope_name="my.lib"} 7.0'
            in body)
    assert 'http_server_duration_milliseconds_bucket{instance="i-1",job="api",le="10",otel_scope_name="my.lib"} 2.0' \
        in body
    assert 'target_info{host_name="n1",instance="i-1",job="api"} 1.0' in body
    assert "trace_id" not in body  # exemplars exist in OpenMetrics only


async def test_openmetrics_with_exemplars_when_the_scraper_asks_for_it():
    instance = await exporter()
    try:
        await instance.consume_metrics(request(with_exemplar(histogram_metric([1, 10], [1, 1, 0]))))
        content_type, body = await scrape(instance, OPENMETRICS)
    finally:
        await instance.shutdown()
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert "# UNIT http_server_duration_milliseconds milliseconds" in body
    assert (f'le="10",otel_scope_name="my.lib"}} 2.0 # {{span_id="{"02" * 8}",trace_id="{"01" * 16}"}} 5.0 '
            f"{T0 // 10**9}.0") in body
    assert body.endswith("# EOF\n")


async def test_openmetrics_can_be_turned_off():
    instance = await exporter(enable_open_metrics=False)
    try:
        await instance.consume_metrics(request(number_metric("gauge")))
        content_type, _ = await scrape(instance, OPENMETRICS)
    finally:
        await instance.shutdown()
    assert content_type.startswith("text/plain; version=0.0.4")


async def test_gzip_when_accepted_and_timestamps_when_asked():
    instance = await exporter(send_timestamps=True, const_labels={"region": "eu"}, namespace="gw")
    try:
        await instance.consume_metrics(request(number_metric("gauge", "temp", value=21.5, time=T0)))
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
                f"http://{instance.address}/metrics", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(await response.read()).decode()
    finally:
        await instance.shutdown()
    assert f'gw_temp{{job="checkout",otel_scope_name="my.lib",region="eu"}} 21.5 {T0 // 10**6}\n' in body


@pytest.mark.parametrize(("accept", "encoding"), [("", "identity"), (OPENMETRICS, "identity"), ("", "gzip")])
async def test_a_large_page_is_streamed_in_slices_with_the_same_bytes(accept: str, encoding: str) -> None:
    instance = await exporter()
    try:
        users = [number_metric("gauge", "queue.depth", value=i, attributes={"user": f"u{i}"}) for i in range(2500)]
        await instance.consume_metrics(request(*users[:1200], number_metric("sum", "http.requests", value=7),
                                               *users[1200:], with_exemplar(histogram_metric([1, 10], [1, 1, 0]))))
        encoder, _ = (choose_encoder(accept) if accept else (generate_latest, ""))
        expected = instance._render(encoder, instance.store.snapshot())  # the page made at once
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
                f"http://{instance.address}/metrics", headers={"Accept": accept, "Accept-Encoding": encoding}
        ) as response:
            assert response.status == 200
            assert response.headers.get("Transfer-Encoding") == "chunked"  # streamed, not made whole first
            body = await response.read()
    finally:
        await instance.shutdown()
    if encoding == "gzip":
        assert response.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(body)
    assert body == expected
    assert body.count(b"\nqueue_depth{") == 2500 and body.count(b"# TYPE queue_depth ") == 1


@pytest.mark.parametrize("series", [10, 2500], ids=["small page", "large page"])
async def test_response_headers_and_cors_reach_every_page(series: int) -> None:
    instance = await exporter(response_headers={"X-Served-By": "otelgw"},
                              cors={"allowed_origins": ["https://dash.example"]})
    try:
        await instance.consume_metrics(request(*[number_metric("gauge", "queue.depth", value=i,
                                                               attributes={"user": f"u{i}"}) for i in range(series)]))
        async with aiohttp.ClientSession() as session, session.get(
                f"http://{instance.address}/metrics", headers={"Origin": "https://dash.example"}) as response:
            body = await response.read()
            headers = response.headers
    finally:
        await instance.shutdown()
    assert body.count(b"\nqueue_depth{") == series
    assert headers["X-Served-By"] == "otelgw"
    assert headers["Access-Control-Allow-Origin"] == "https://dash.example" and "Origin" in headers.getall("Vary")


async def test_a_scraper_leaving_mid_page_is_no_error_and_the_next_scrape_is_whole(caplog):
    caplog.set_level(logging.DEBUG)
    instance = await exporter()
    try:
        await instance.consume_metrics(request(*[number_metric("gauge", "queue.depth", value=i,
                                                               attributes={"user": f"user-{i:06d}" * 20})
                                                 for i in range(20_000)]))  # a page of several megabytes
        host, port = instance.address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        assert (await reader.readexactly(1000)).startswith(b"HTTP/1.1 200")
        writer.transport.abort()  # gone, as a scraper whose timeout ran out

        def noticed() -> bool:
            return any("closed the connection before the page was complete" in r.getMessage() for r in caplog.records)

        for _ in range(200):  # until the exporter noticed (its next write fails) and ended the response
            if noticed():
                break
            await asyncio.sleep(0.05)
        assert noticed()
        _, body = await scrape(instance)
    finally:
        await instance.shutdown()
    assert body.count("\nqueue_depth{") == 20_000
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_cumulative_points_replace_older_ones_and_late_points_are_ignored():
    instance = await exporter()
    try:
        await instance.consume_metrics(request(number_metric("sum", value=5, time=T0 + 2)))
        await instance.consume_metrics(request(number_metric("sum", value=3, time=T0 + 1)))  # late
        _, body = await scrape(instance)
        assert 'requests_total{job="checkout",otel_scope_name="my.lib"} 5.0' in body
        await instance.consume_metrics(request(number_metric("sum", value=9, time=T0 + 3)))
        _, body = await scrape(instance)
        assert 'requests_total{job="checkout",otel_scope_name="my.lib"} 9.0' in body
        await instance.consume_metrics(request(number_metric("sum", time=T0 + 4,
                                                             flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)))
        _, body = await scrape(instance)
        assert "requests_total{" not in body  # the series ended
    finally:
        await instance.shutdown()


async def test_delta_sums_are_served_cumulative():
    instance = await exporter()
    try:
        for i in range(3):
            await instance.consume_metrics(request(number_metric(
                "sum", value=2, temporality=1, start=T0 + i * 10**9, time=T0 + (i + 1) * 10**9)))
        _, body = await scrape(instance)
    finally:
        await instance.shutdown()
    assert 'requests_total{job="checkout",otel_scope_name="my.lib"} 6.0' in body


async def test_series_expire_on_a_timer_without_any_scrape():
    instance = await exporter(metric_expiration="200ms")
    try:
        await instance.consume_metrics(request(number_metric("gauge")))
        assert len(instance.store) == 1
        deadline = time.monotonic() + 5
        while len(instance.store):
            assert time.monotonic() < deadline, "expired series were not removed by the timer"
            await asyncio.sleep(0.05)
        _, body = await scrape(instance)
        assert "requests" not in body
    finally:
        await instance.shutdown()


async def test_new_series_beyond_the_cap_are_refused_and_counted():
    telemetry = Telemetry()
    instance = await exporter(telemetry, max_series=3)
    try:
        for i in range(10):
            await instance.consume_metrics(request(number_metric("gauge", attributes={"user": i})))
        await instance.consume_metrics(request(number_metric("gauge", value=99, attributes={"user": 0})))
        _, body = await scrape(instance)
    finally:
        await instance.shutdown()
    assert body.count("requests{") == 3 and 'user="0"} 99.0' in body
    assert telemetry.registry.get_sample_value("otelgw_exporter_prometheus_refused_points_total",
                                               {"exporter": "prometheus", "reason": "max_series"}) == 7
    assert telemetry.registry.get_sample_value("otelgw_component_dropped_items_total", {
        "component": "prometheus", "otel_signal": "metrics", "reason": "max_series"}) == 7
    assert telemetry.registry.get_sample_value("otelgw_exporter_prometheus_series", {"exporter": "prometheus"}) == 3
    assert telemetry.registry.get_sample_value("otelcol_exporter_sent_metric_points_total",
                                               {"exporter": "prometheus"}) == 11


async def test_one_name_with_two_types_keeps_the_first():
    telemetry = Telemetry()
    instance = await exporter(telemetry)
    try:
        await instance.consume_metrics(request(number_metric("gauge", "thing", attributes={"a": 1})))
        await instance.consume_metrics(request(number_metric("sum", "thing", monotonic=False, attributes={"a": 2})))
        await instance.consume_metrics(request(histogram_metric([1], [1, 0], name="thing", unit="")))
        _, body = await scrape(instance)
    finally:
        await instance.shutdown()
    assert "# TYPE thing gauge" in body and "thing_bucket" not in body
    assert telemetry.registry.get_sample_value("otelgw_exporter_prometheus_refused_points_total",
                                               {"exporter": "prometheus", "reason": "type_conflict"}) == 1
    assert telemetry.registry.get_sample_value("otelgw_component_dropped_items_total", {
        "component": "prometheus", "otel_signal": "metrics", "reason": "type_conflict"}) == 1


async def test_serves_https_with_a_certificate():
    instance = await exporter(tls={"cert_file": str(TLS / "localhost.crt"), "key_file": str(TLS / "localhost.key")})
    try:
        await instance.consume_metrics(request(number_metric("gauge")))
        context = ssl.create_default_context(cafile=str(TLS / "localhost.crt"))
        _, body = await scrape(instance, scheme="https", ssl=context, server_hostname="localhost")
    finally:
        await instance.shutdown()
    assert "requests{" in body


@pytest.mark.skipif(not Path(PROMTOOL).is_file(), reason="promtool (Debian's prometheus package) is not installed")
async def test_promtool_check_metrics_accepts_every_kind_of_series():
    summary = pb.Metric(name="rpc.duration", unit="s", description="RPC time")
    point = summary.summary.data_points.add(time_unix_nano=T0, count=2, sum=1.5)
    point.quantile_values.add(quantile=0.5, value=0.5)
    instance = await exporter()
    try:
        await instance.consume_metrics(request(
            number_metric("sum", "http.requests", attributes={"http.method": "GET", "2x": "y"}),
            number_metric("gauge", "cpu.utilization", unit="1", value=0.5),
            number_metric("sum", "queue.size", monotonic=False),
            histogram_metric([0.1, 1], [1, 1, 0], name="http.server.duration", unit="s"), summary,
            resource={"service.name": "api", "service.instance.id": "i", "host.name": "n"}))
        _, body = await scrape(instance)
    finally:
        await instance.shutdown()
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
