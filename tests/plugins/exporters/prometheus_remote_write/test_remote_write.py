"""prometheus_remote_write against a remote-write receiver that decodes with the project's protos.

The receiver checks what docs/protocols.md §4 requires of every request (snappy block body, headers, sorted
labels with __name__, no empty values, ms timestamps) and answers as scripted. Stock Prometheus is exercised in
tests/test_prometheus_real.py.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cramjam
import pytest
from aiohttp import web
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.errors import PermanentError, RetryableError
from gateway.protos.prometheus import remote_pb2
from gateway.testing import make_host, settings_for
from plugins.exporters.prometheus_remote_write.exporter import remote_write_error
from plugins.exporters.prometheus_remote_write.factory import factory

from ..prometheus.test_translation import SEC, T0, histogram_metric, number_metric, request


@dataclass
class Receiver:
    """A remote-write endpoint on 127.0.0.1:0 that records decoded requests and answers as scripted."""

    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    requests: list[remote_pb2.WriteRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    max_delay: float = 0.0
    attempts: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/write", self._write)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/api/v1/write"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _write(self, http: web.Request) -> web.Response:
        self.attempts += 1
        body = await http.read()
        if self.max_delay:
            await asyncio.sleep(random.uniform(0, self.max_delay))
        if self.answers:
            status, headers = self.answers.popleft()
            if status != 204:
                return web.Response(status=status, text="scripted failure", headers=headers)
        decoded = remote_pb2.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
        for series in decoded.timeseries:
            names = [label.name for label in series.labels]
            assert "__name__" in names and names == sorted(names) and len(set(names)) == len(names), names
            assert all(label.value for label in series.labels), series.labels
            assert series.samples and all(10**12 < s.timestamp < 10**14 for s in series.samples)  # ms
        self.requests.append(decoded)
        self.headers.append(dict(http.headers))
        return web.Response(status=204)

    def series(self) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Every series' samples in arrival order."""
        out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        for decoded in self.requests:
            for series in decoded.timeseries:
                key = tuple((label.name, label.value) for label in series.labels)
                out.setdefault(key, []).extend((s.timestamp, s.value) for s in series.samples)
        return out

    def value(self, name: str, **labels: str) -> list[float]:
        return [samples[-1][1] for key, samples in self.series().items()
                if dict(key)["__name__"] == name and all(dict(key).get(k) == v for k, v in labels.items())]


@pytest.fixture
async def receiver():
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def exporter(receiver: Receiver, telemetry: Telemetry | None = None, **overrides: Any) -> Any:
    config = decode(factory.create_default_config(), {"endpoint": receiver.url, **overrides})
    instance = factory.create_metrics(
        settings_for(Kind.EXPORTER, "prometheusremotewrite", Signal.METRICS, telemetry), config)
    await instance.start(make_host())
    return instance


async def test_requests_follow_the_protocol(receiver):
    instance = await exporter(receiver, headers={"X-Scope-OrgID": "t1"}, external_labels={"cluster": "eu"},
                              remote_write_queue={"num_consumers": 1})
    try:
        await instance.consume_metrics(request(
            number_metric("sum", "http.requests", value=7, attributes={"Method": "GET", "empty": ""}),
            histogram_metric([1, 10], [1, 1, 0]),
            resource={"service.name": "api", "service.instance.id": "i-1", "host.name": "n1"}))
    finally:
        await instance.shutdown()
    [headers] = receiver.headers
    assert headers["Content-Encoding"] == "snappy" and headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0" and headers["User-Agent"].startswith("otelgw/")
    assert headers["X-Scope-OrgID"] == "t1"
    series = receiver.series()
    counter = next(key for key in series if dict(key)["__name__"] == "http_requests_total")
    assert counter == (("Method", "GET"), ("__name__", "http_requests_total"), ("cluster", "eu"),
                       ("instance", "i-1"), ("job", "api"), ("otel_scope_name", "my.lib"))
    assert series[counter] == [((T0 + SEC) // 1_000_000, 7.0)]
    assert receiver.value("http_server_duration_milliseconds_bucket", le="10") == [2]
    assert receiver.value("http_server_duration_milliseconds_bucket", le="+Inf") == [2]
    assert receiver.value("target_info", host_name="n1", cluster="eu") == [1]


async def test_5xx_and_429_are_retried_other_4xx_never(receiver):
    telemetry = Telemetry()
    instance = await exporter(receiver, telemetry, remote_write_queue={"enabled": False})
    labels = {"exporter": "prometheusremotewrite"}
    try:
        receiver.answers.extend([(500, {}), (503, {}), (429, {"Retry-After": "0"})])
        await instance.consume_metrics(request(number_metric("gauge", value=1, time=T0 + SEC)))
        assert receiver.attempts == 4 and len(receiver.requests) == 1
        receiver.answers.append((400, {}))
        with pytest.raises(PermanentError, match="HTTP 400: scripted failure"):
            await instance.consume_metrics(request(number_metric("gauge", value=2, time=T0 + 2 * SEC)))
        assert receiver.attempts == 5  # not retried
    finally:
        await instance.shutdown()
    registry = telemetry.registry
    assert registry.get_sample_value("otelgw_exporter_retries_total", {**labels, "data_type": "metrics"}) == 3
    assert registry.get_sample_value("otelcol_exporter_send_failed_metric_points_total", labels) == 1


def test_status_mapping():
    assert isinstance(remote_write_error(500), RetryableError)
    assert isinstance(remote_write_error(507), RetryableError)  # every 5xx, unlike OTLP's 502/503/504
    assert remote_write_error(429, retry_after="3").retry_after == 3  # type: ignore[attr-defined]
    for status in (400, 401, 404, 409, 413):
        assert isinstance(remote_write_error(status), PermanentError)


async def test_retries_stop_at_the_cap(receiver):
    instance = await exporter(receiver, remote_write_queue={"enabled": False},
                              retry_on_failure={"initial_interval": "10ms", "max_interval": "20ms",
                                                "max_elapsed_time": "200ms"})
    receiver.answers.extend([(500, {})] * 1000)  # Prometheus answers 500 to some errors no retry can fix
    started = time.monotonic()
    try:
        with pytest.raises(RetryableError):
            await instance.consume_metrics(request(number_metric("gauge")))
    finally:
        await instance.shutdown()
    assert time.monotonic() - started < 2 and 3 <= receiver.attempts < 50


async def test_per_series_time_order_holds_under_concurrency(receiver):
    """Many batches, 4 concurrent shards, random receiver delays: every series arrives in time order."""
    receiver.max_delay = 0.005
    instance = await exporter(receiver, remote_write_queue={"num_consumers": 4})
    try:
        for step in range(40):
            metrics = [number_metric("sum", f"counter.{m}", value=step, attributes={"shard": m % 7},
                                     time=T0 + step * SEC) for m in range(25)]
            await instance.consume_metrics(request(*metrics))
        deadline = time.monotonic() + 20
        while sum(len(s) for s in receiver.series().values()) < 40 * 25:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await instance.shutdown()
    series = receiver.series()
    assert len(series) == 25
    for samples in series.values():
        timestamps = [ts for ts, _ in samples]
        assert timestamps == sorted(timestamps) and len(set(timestamps)) == 40
    assert len(receiver.requests) >= 40 * 2  # the batches really were split across concurrent shards


async def test_samples_not_newer_than_the_last_sent_are_dropped_not_sent(receiver):
    instance = await exporter(receiver, remote_write_queue={"enabled": False})
    try:
        await instance.consume_metrics(request(number_metric("gauge", value=1, time=T0 + 5 * SEC)))
        await instance.consume_metrics(request(number_metric("gauge", value=2, time=T0 + 3 * SEC)))  # late
        await instance.consume_metrics(request(number_metric("gauge", value=3, time=T0 + 6 * SEC)))
        # a late histogram point: its bucket, sum and count samples are all dropped, and it is one point dropped
        await instance.consume_metrics(request(histogram_metric([1, 5], [1, 1, 1], time=T0 + 5 * SEC)))
        await instance.consume_metrics(request(histogram_metric([1, 5], [1, 1, 1], time=T0 + 4 * SEC)))
    finally:
        await instance.shutdown()
    [samples] = [s for key, s in receiver.series().items() if dict(key)["__name__"] == "requests"]
    assert [v for _, v in samples] == [1, 3]
    assert instance.encoder.dropped_out_of_order == 1 + 5  # 3 buckets (+Inf included), _sum and _count
    assert instance.settings.telemetry.registry.get_sample_value("otelgw_component_dropped_items_total", {
        "component": "prometheusremotewrite", "otel_signal": "metrics", "reason": "out_of_order"}) == 2


async def test_a_retry_resends_only_the_failed_shard_and_never_recounts_deltas(receiver):
    instance = await exporter(receiver, remote_write_queue={"enabled": False, "num_consumers": 2},
                              retry_on_failure={"initial_interval": "10ms", "max_interval": "10ms"})
    metrics = [number_metric("sum", f"delta.{m}", value=1, temporality=1, start=T0, time=T0 + SEC)
               for m in range(20)]
    receiver.answers.append((503, {}))  # the first request of the batch fails once
    try:
        await instance.consume_metrics(request(*metrics))
    finally:
        await instance.shutdown()
    assert receiver.attempts == 3 and len(receiver.requests) == 2
    values = [samples[-1][1] for key, samples in receiver.series().items() if dict(key)["__name__"] != "target_info"]
    assert sorted(values) == [1.0] * 20  # each delta counted once, each series sent once


async def test_large_batches_are_split_by_size(receiver):
    instance = await exporter(receiver, max_batch_size_bytes=4096, remote_write_queue={"num_consumers": 1})
    try:
        await instance.consume_metrics(request(*[number_metric("gauge", f"g.{i}", attributes={"pad": "x" * 100})
                                                 for i in range(200)]))
    finally:
        await instance.shutdown()
    assert len(receiver.requests) > 5
    assert all(r.ByteSize() <= 4096 for r in receiver.requests)
    assert sum(len(r.timeseries) for r in receiver.requests) == 200


async def test_stale_points_send_the_stale_nan(receiver):
    instance = await exporter(receiver, remote_write_queue={"enabled": False})
    try:
        await instance.consume_metrics(request(number_metric("gauge", time=T0 + SEC,
                                                             flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)))
    finally:
        await instance.shutdown()
    [samples] = receiver.series().values()
    assert struct.pack("<d", samples[0][1]) == struct.pack("<Q", 0x7FF0000000000002)


async def test_metadata_namespace_and_no_target_info(receiver):
    instance = await exporter(receiver, send_metadata=True, namespace="gw", target_info={"enabled": False},
                              remote_write_queue={"enabled": False, "num_consumers": 1})
    try:
        await instance.consume_metrics(request(histogram_metric([1], [1, 0]), number_metric("sum", "calls"),
                                               resource={"service.name": "a", "host.name": "h"}))
    finally:
        await instance.shutdown()
    [decoded] = receiver.requests
    assert {(m.metric_family_name, m.type) for m in decoded.metadata} == {
        ("gw_http_server_duration_milliseconds", 3), ("gw_calls_total", 1)}
    assert not any(dict(k)["__name__"] == "target_info" for k in receiver.series())
