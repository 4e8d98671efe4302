"""Routing keys besides the traces' trace id, and metrics and logs pipelines: two OtlpSinks as backends."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.component import Kind, Signal, consume, count_items
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.testing import make_logs, make_metrics, make_traces, settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.load_balancing.config import with_port
from plugins.exporters.load_balancing.factory import factory

from .test_load_balancing import wait_for


@pytest.fixture
async def sinks() -> AsyncIterator[list[OtlpSink]]:
    servers = [OtlpSink(), OtlpSink()]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


def exporter_for(sinks: list[OtlpSink], signal: Signal, routing_key: str = "", **extra: Any) -> Any:
    config = decode(factory.create_default_config(), {
        "routing_key": routing_key, **extra,
        "resolver": {"static": {"hostnames": [s.grpc_endpoint for s in sinks]}},
        "protocol": {"otlp": {"tls": {"insecure": True}, "sending_queue": {"enabled": False}}}})
    assert validate_tree(config) == []
    create = factory.create_fn(signal)
    assert create is not None
    return create(settings_for(Kind.EXPORTER, "load_balancing", signal), config)


async def send(exporter: Any, signal: Signal, *batches: Any) -> None:
    await exporter.start(None)
    try:
        for batch in batches:
            await consume(exporter, signal, batch)
    finally:
        await exporter.shutdown()


def series(sink: OtlpSink) -> dict[tuple[str, str, str], list[float]]:
    """(service, metric, index attribute) → the values of its points, as received by ``sink``."""
    out: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for batch in sink.batches(Signal.METRICS):
        for rm in batch.resource_metrics:
            service = rm.resource.attributes[0].value.string_value
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.sum.data_points:
                        index = next(kv.value.int_value for kv in point.attributes if kv.key == "index")
                        out[(service, metric.name, str(index))].append(point.as_double or point.as_int)
    return out


async def test_metrics_by_stream_id_keep_each_series_on_one_backend_and_spread_them(
        sinks: list[OtlpSink]) -> None:
    batches = [make_metrics(20, service=service, name=name) for _ in range(3)
               for service in ("api", "web") for name in ("requests", "errors")]
    await send(exporter_for(sinks, Signal.METRICS, "streamID"), Signal.METRICS, *batches)
    per_sink = [series(sink) for sink in sinks]
    assert all(per_sink), "both backends get series"
    assert not set(per_sink[0]) & set(per_sink[1]), "no series is split"
    merged = per_sink[0] | per_sink[1]
    assert len(merged) == 2 * 2 * 20 and all(len(values) == 3 for values in merged.values())
    for sink in sinks:  # a metric copied into several requests keeps its type and temporality
        for batch in sink.batches(Signal.METRICS):
            metric = batch.resource_metrics[0].scope_metrics[0].metrics[0]
            assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == 2


@pytest.mark.parametrize(("signal", "key", "make"), [
    (Signal.METRICS, "metric", lambda i: make_metrics(5, name=f"metric-{i}")),
    (Signal.METRICS, "service", lambda i: make_metrics(5, service=f"svc-{i}")),
    (Signal.LOGS, "resource", lambda i: make_logs(4, service=f"svc-{i}")),
    (Signal.TRACES, "service", lambda i: make_traces(6, service=f"svc-{i}")),
    (Signal.TRACES, "attributes", lambda i: make_traces(6, attributes={"tenant": f"t-{i}"})),
    (Signal.LOGS, "attributes", lambda i: make_logs(3, attributes={"tenant": f"t-{i}"})),
    (Signal.METRICS, "attributes", lambda i: make_metrics(4, service=f"svc-{i}")),
])
async def test_each_key_keeps_its_unit_on_one_backend(sinks: list[OtlpSink], signal: Signal, key: str,
                                                      make: Any) -> None:
    batches = [make(i) for i in range(12)]
    total = sum(count_items(signal, b) for b in batches)
    extra = {"routing_attributes": ["tenant", "service.name"]} if key == "attributes" else {}
    exporter = exporter_for(sinks, signal, key, **extra)
    await send(exporter, signal, *batches)
    await wait_for(lambda: sum(s.item_count(signal) for s in sinks) == total)
    counts = [s.item_count(signal) for s in sinks]
    assert all(counts), counts  # 12 distinct keys over two backends: both get some
    # Each request was one unit (one service, metric, resource or tenant): it arrived whole on one backend.
    assert sorted(count_items(signal, r.batch) for s in sinks for r in s.received(signal)) == \
        sorted(count_items(signal, b) for b in batches)


async def test_logs_by_trace_id_go_with_their_trace(sinks: list[OtlpSink]) -> None:
    batch = make_logs(30)
    for index, record in enumerate(batch.resource_logs[0].scope_logs[0].log_records):
        record.trace_id = bytes([index % 6 + 1]) * 16
    exporter = exporter_for(sinks, Signal.LOGS, "traceID")
    await send(exporter, Signal.LOGS, batch)
    where: dict[bytes, set[int]] = defaultdict(set)
    for index, sink in enumerate(sinks):
        for received in sink.received(Signal.LOGS):
            for record in received.batch.resource_logs[0].scope_logs[0].log_records:
                where[bytes(record.trace_id)].add(index)
    assert len(where) == 6 and all(len(owners) == 1 for owners in where.values())
    assert sum(s.item_count(Signal.LOGS) for s in sinks) == 30


def test_hostnames_without_a_port_get_4317_and_keys_are_checked_per_signal() -> None:
    assert [with_port(h) for h in ("sampler-0", "10.0.0.5", "[fd00::5]", "sampler-1:5317")] == [
        "sampler-0:4317", "10.0.0.5:4317", "[fd00::5]:4317", "sampler-1:5317"]
    config = decode(factory.create_default_config(), {"routing_key": "streamID",
                                                      "resolver": {"static": {"hostnames": ["sampler-0"]}}})
    assert validate_tree(config) == [] and config.endpoints == ["sampler-0:4317"]
    assert config.key_for(Signal.METRICS) == "streamID"
    with pytest.raises(ConfigError, match="routing_key: streamID cannot route traces; the keys for traces are: "
                                          "traceID"):
        config.key_for(Signal.TRACES)
