"""span_metrics behaviour: what the Collector's spanmetrics connector emits, and bounded memory."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import hashable_value
from gateway._host.config import build_config
from gateway._host.graph import Graph
from gateway._host.registry import load_registry
from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import Sink, any_value, make_host, make_traces, settings_for
from plugins.connectors.span_metrics.aggregator import SpanAggregator
from plugins.connectors.span_metrics.factory import factory

MS = 1_000_000


def config(**overrides: Any) -> Any:
    return decode(factory.create_default_config(), overrides)


def spans(*durations_ms: float, name: str = "GET /orders", service: str = "checkout", kind: int = 2,
          status: int = 0, attributes: dict[str, Any] | None = None, resource: dict[str, Any] | None = None,
          scope: str = "lib", event_names: tuple[str, ...] = ()) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in {"service.name": service, **(resource or {})}.items():
        rs.resource.attributes.add(key=key).value.CopyFrom(any_value(value))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = scope, "1.0"
    for i, duration in enumerate(durations_ms):
        span = ss.spans.add(name=name, kind=kind, trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8)
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + round(duration * MS)
        span.status.code = status
        for key, value in (attributes or {}).items():
            span.attributes.add(key=key).value.CopyFrom(any_value(value))
        for event in event_names:
            span.events.add(name=event).attributes.add(key="exception.type").value.string_value = event
    return request


def metric(request: Any, name: str) -> Any:
    found = [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name]
    assert len(found) == 1, [m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return found[0]


def attrs(point: Any) -> dict[str, Any]:
    return {kv.key: hashable_value(kv.value) for kv in point.attributes}


def by_attrs(points: Any, **wanted: Any) -> Any:
    found = [p for p in points if all(attrs(p).get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, [attrs(p) for p in points]
    return found[0]


def test_calls_and_duration_buckets_are_exact_with_the_collectors_names_and_attributes():
    aggregator = SpanAggregator(config())
    aggregator.add(spans(1, 2, 3, 50, 51, 16_000))
    aggregator.add(spans(7, name="GET /cart", status=2, kind=3))
    out = aggregator.build(now_ns=1_800_000_000_000_000_000)
    [rm] = out.resource_metrics
    assert {kv.key: kv.value.string_value for kv in rm.resource.attributes} == {"service.name": "checkout"}
    assert rm.scope_metrics[0].scope.name == "spanmetricsconnector"
    calls = metric(out, "traces.span.metrics.calls")
    assert calls.sum.is_monotonic and calls.sum.aggregation_temporality == 2
    orders = by_attrs(calls.sum.data_points, **{"span.name": "GET /orders"})
    assert attrs(orders) == {"service.name": "checkout", "span.name": "GET /orders", "span.kind": "SPAN_KIND_SERVER",
                             "status.code": "STATUS_CODE_UNSET"}
    assert orders.as_int == 6 and orders.time_unix_nano == 1_800_000_000_000_000_000
    cart = by_attrs(calls.sum.data_points, **{"span.name": "GET /cart"})
    assert (attrs(cart)["span.kind"], attrs(cart)["status.code"], cart.as_int) == (
        "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", 1)
    duration = metric(out, "traces.span.metrics.duration")
    assert duration.unit == "ms" and duration.histogram.aggregation_temporality == 2
    histogram = by_attrs(duration.histogram.data_points, **{"span.name": "GET /orders"})
    assert list(histogram.explicit_bounds) == [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000,
                                               10000, 15000]
    # bounds are upper-inclusive: 2 ms lands in le=2, 50 in le=50, 16 s above the last bound
    assert list(histogram.bucket_counts) == [2, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert (histogram.count, histogram.sum) == (6, 1 + 2 + 3 + 50 + 51 + 16_000)
    assert not histogram.exemplars  # exemplars are off by default


def test_cumulative_points_keep_their_start_and_grow():
    aggregator = SpanAggregator(config())
    aggregator.add(spans(1, 2))
    first = by_attrs(metric(aggregator.build(), "traces.span.metrics.calls").sum.data_points)
    aggregator.add(spans(3))
    second = by_attrs(metric(aggregator.build(), "traces.span.metrics.calls").sum.data_points)
    assert (first.as_int, second.as_int) == (2, 3)
    assert second.start_time_unix_nano == first.start_time_unix_nano < first.time_unix_nano <= second.time_unix_nano


def test_delta_points_reset_and_start_where_the_last_one_ended():
    aggregator = SpanAggregator(config(aggregation_temporality="AGGREGATION_TEMPORALITY_DELTA"))
    aggregator.add(spans(1, 2))
    first = by_attrs(metric(aggregator.build(now_ns=10), "traces.span.metrics.calls").sum.data_points)
    assert aggregator.build(now_ns=15) is None  # nothing happened in between: nothing to send
    aggregator.add(spans(3))
    out = aggregator.build(now_ns=20)
    second = by_attrs(metric(out, "traces.span.metrics.calls").sum.data_points)
    assert metric(out, "traces.span.metrics.calls").sum.aggregation_temporality == 1
    assert (first.as_int, second.as_int) == (2, 1)
    assert (second.start_time_unix_nano, second.time_unix_nano) == (10, 20)
    assert by_attrs(metric(out, "traces.span.metrics.duration").histogram.data_points).count == 1


def test_dimensions_read_span_then_resource_then_default_and_omit_the_rest():
    aggregator = SpanAggregator(config(dimensions=[{"name": "http.method", "default": "GET"},
                                                   {"name": "host.name"}, {"name": "http.status_code"}]))
    aggregator.add(spans(1, attributes={"http.status_code": 200, "other": "ignored"}, resource={"host.name": "n1"}))
    aggregator.add(spans(1, attributes={"http.method": "POST", "host.name": "span-wins"}, resource={"host.name": "n1"}))
    points = metric(aggregator.build(), "traces.span.metrics.calls").sum.data_points
    assert sorted((attrs(p).get("http.method"), attrs(p).get("host.name"), attrs(p).get("http.status_code"))
                  for p in points) == [("GET", "n1", 200), ("POST", "span-wins", None)]
    assert "other" not in attrs(points[0])


def test_excluded_dimensions_merge_series():
    aggregator = SpanAggregator(config(exclude_dimensions=["status.code", "span.kind"]))
    aggregator.add(spans(1, status=1, kind=2))
    aggregator.add(spans(1, status=2, kind=3))
    [point] = metric(aggregator.build(), "traces.span.metrics.calls").sum.data_points
    assert attrs(point) == {"service.name": "checkout", "span.name": "GET /orders"} and point.as_int == 2


def test_seconds_unit_and_explicit_buckets():
    aggregator = SpanAggregator(config(histogram={"unit": "s", "explicit": {"buckets": ["100ms", "1s", "2500ms"]}}))
    aggregator.add(spans(100, 900, 2500, 3000))
    duration = metric(aggregator.build(), "traces.span.metrics.duration")
    [point] = duration.histogram.data_points
    assert duration.unit == "s" and list(point.explicit_bounds) == [0.1, 1, 2.5]
    assert list(point.bucket_counts) == [1, 1, 1, 1] and point.sum == pytest.approx(6.5)


def test_exponential_histogram():
    aggregator = SpanAggregator(config(histogram={"exponential": {"max_size": 20}}))
    aggregator.add(spans(0, 1, 2, 4, 1000, 1_000_000))
    [point] = metric(aggregator.build(), "traces.span.metrics.duration").exponential_histogram.data_points
    assert (point.count, point.zero_count, point.min, point.max) == (6, 1, 0, 1_000_000)
    assert sum(point.positive.bucket_counts) == 5 and len(point.positive.bucket_counts) <= 20
    base = 2 ** (2 ** -point.scale)
    for value in (1, 2, 4, 1000, 1_000_000):  # every value sits in the bucket its index says
        index = next(i for i in range(point.positive.offset, point.positive.offset + 20) if value <= base ** (i + 1))
        assert point.positive.bucket_counts[index - point.positive.offset] >= 1


def test_exemplars_carry_trace_and_span_ids_are_capped_and_cleared_per_flush():
    aggregator = SpanAggregator(config(exemplars={"enabled": True, "max_per_data_point": 2}))
    aggregator.add(spans(1, 2, 3))
    out = aggregator.build()
    histogram = by_attrs(metric(out, "traces.span.metrics.duration").histogram.data_points)
    assert [(e.trace_id, e.span_id, e.as_double) for e in histogram.exemplars] == [
        (bytes([2]) * 16, bytes([2]) * 8, 2.0), (bytes([3]) * 16, bytes([3]) * 8, 3.0)]
    assert len(by_attrs(metric(out, "traces.span.metrics.calls").sum.data_points).exemplars) == 2
    aggregator.add(spans(5))
    histogram = by_attrs(metric(aggregator.build(), "traces.span.metrics.duration").histogram.data_points)
    assert [e.as_double for e in histogram.exemplars] == [5.0]


def test_cardinality_limit_folds_new_series_into_one_overflow_series_and_keeps_totals():
    aggregator = SpanAggregator(config(aggregation_cardinality_limit=5))
    for i in range(1000):
        aggregator.add(spans(1, name=f"GET /users/{i}"))  # an id in the span name: the classic explosion
    points = metric(aggregator.build(), "traces.span.metrics.calls").sum.data_points
    assert len(points) == 6 and aggregator.series_count == 6
    overflow = by_attrs(points, **{"otel.metric.overflow": True})
    assert attrs(overflow) == {"otel.metric.overflow": True} and overflow.as_int == 995
    assert sum(p.as_int for p in points) == 1000 and aggregator.overflowed == 995


def test_memory_is_bounded_by_the_limits_under_a_high_cardinality_stream():
    aggregator = SpanAggregator(config(aggregation_cardinality_limit=100, resource_metrics_cache_size=10))
    request = spans(*([1] * 200))
    batch = request.resource_spans[0].scope_spans[0].spans
    service = request.resource_spans[0].resource.attributes[0].value

    def feed(start: int, count: int) -> None:
        for i in range(start, start + count, 200):
            service.string_value = f"svc-{i // 200 % 10}"
            for j, span in enumerate(batch):
                span.name = f"GET /users/{i + j}"  # an id in the span name: every span a new series
            aggregator.add(request)

    feed(0, 4_000)  # every resource has reached its limit
    assert aggregator.series_count == 10 * 101
    # A flush counts the spans still waiting in their series' lists (FOLD_AFTER), whose sums would otherwise be
    # made inside the measured window below.
    aggregator.build()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        feed(4_000, 40_000)  # ten times as many distinct series again
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert aggregator.series_count == 10 * 101  # 10 resources, 100 series and one overflow series each
    assert after - before < 16 * 1024, f"state grew by {after - before} bytes"
    assert aggregator.overflowed == 44_000 - 10 * 100


def test_least_recently_seen_resources_are_dropped_beyond_the_cache_size():
    aggregator = SpanAggregator(config(resource_metrics_cache_size=2))
    for service in ("a", "b", "a", "c"):
        aggregator.add(spans(1, service=service))
    services = {rm.resource.attributes[0].value.string_value for rm in aggregator.build().resource_metrics}
    assert services == {"a", "c"}


def test_resources_that_went_quiet_expire(monkeypatch):
    aggregator = SpanAggregator(config(metrics_expiration="10s"))
    aggregator.add(spans(1, service="old"))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 20)
    aggregator.add(spans(1, service="new"))
    out = aggregator.build()
    assert [rm.resource.attributes[0].value.string_value for rm in out.resource_metrics] == ["new"]


def test_spans_of_a_resource_without_service_name_are_not_counted():
    request = spans(1)
    del request.resource_spans[0].resource.attributes[:]
    aggregator = SpanAggregator(config())
    aggregator.add(request)
    assert aggregator.build() is None


def test_resource_key_attributes_merge_resources_that_differ_elsewhere():
    aggregator = SpanAggregator(config(resource_metrics_key_attributes=["service.name"]))
    aggregator.add(spans(1, resource={"pid": 1}))
    aggregator.add(spans(1, resource={"pid": 2}))
    [rm] = aggregator.build().resource_metrics
    assert rm.scope_metrics[0].metrics[0].sum.data_points[0].as_int == 2


def test_events_and_instrumentation_scope_dimensions():
    aggregator = SpanAggregator(config(events={"enabled": True, "dimensions": [{"name": "exception.type"}]},
                                       include_instrumentation_scope=["lib"]))
    aggregator.add(spans(1, event_names=("TimeoutError", "TimeoutError", "KeyError")))
    out = aggregator.build()
    events = metric(out, "traces.span.metrics.events").sum.data_points
    assert sorted((attrs(p)["exception.type"], p.as_int) for p in events) == [("KeyError", 1), ("TimeoutError", 2)]
    [call] = metric(out, "traces.span.metrics.calls").sum.data_points
    assert attrs(call)["span.instrumentation.scope.name"] == "lib"
    assert attrs(call)["span.instrumentation.scope.version"] == "1.0"


def test_histogram_can_be_disabled_and_namespace_changed():
    aggregator = SpanAggregator(config(histogram={"disable": True}, namespace=""))
    aggregator.add(spans(1))
    out = aggregator.build()
    assert [m.name for m in out.resource_metrics[0].scope_metrics[0].metrics] == ["calls"]


async def test_flushes_on_its_timer_and_once_more_at_shutdown():
    sink = Sink()
    connector = factory.connectors[(Signal.TRACES, Signal.METRICS)](
        settings_for(Kind.CONNECTOR, "spanmetrics", Signal.TRACES), config(metrics_flush_interval="50ms"), sink)
    await connector.start(make_host())
    await connector.consume_traces(spans(1, 2))
    deadline = time.monotonic() + 5
    while not sink.batches[Signal.METRICS]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await connector.consume_traces(spans(3))
    flushed = len(sink.batches[Signal.METRICS])
    await connector.shutdown()
    assert len(sink.batches[Signal.METRICS]) > flushed
    last = sink.batches[Signal.METRICS][-1]
    assert metric(last, "traces.span.metrics.calls").sum.data_points[0].as_int == 3


async def test_a_refusing_next_consumer_is_counted_not_raised():
    class Refusing(Sink):
        async def consume_metrics(self, batch: Any) -> None:
            raise RuntimeError("exporter queue full")

    telemetry = Telemetry()
    connector = factory.connectors[(Signal.TRACES, Signal.METRICS)](
        settings_for(Kind.CONNECTOR, "spanmetrics", Signal.TRACES, telemetry), config(), Refusing())
    await connector.consume_traces(spans(1, 2))
    await connector.flush()
    assert telemetry.registry.get_sample_value(
        "otelgw_connector_flush_failed_metric_points_total", {"connector": "spanmetrics"}) == 2
    assert telemetry.registry.get_sample_value("otelgw_component_dropped_items_total", {
        "component": "spanmetrics", "otel_signal": "metrics", "reason": "flush_failed"}) == 2


async def test_collector_yaml_with_the_spanmetrics_alias_runs_in_a_graph():
    raw = yaml.safe_load("""
        receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
        connectors: {spanmetrics: {metrics_flush_interval: 1h}}
        exporters: {debug: {}}
        service:
          pipelines:
            traces: {receivers: [otlp], exporters: [spanmetrics]}
            metrics: {receivers: [spanmetrics], exporters: [debug]}
    """)
    graph = Graph(build_config(raw, load_registry()), Telemetry())
    host = make_host()
    await graph.start(host)
    connector = graph.find(Kind.CONNECTOR, "spanmetrics")
    await connector.consume_traces(make_traces(spans=10))
    # make_traces: operation-0..6, server spans every fifth, so operation-0 is seen as server and as client
    assert connector.spans.series_count == 8
    assert await graph.shutdown(host) == []


async def test_the_default_limit_holds_an_id_in_the_span_name_and_says_so_once(caplog):
    telemetry = Telemetry()
    connector = factory.connectors[(Signal.TRACES, Signal.METRICS)](
        settings_for(Kind.CONNECTOR, "spanmetrics", Signal.TRACES, telemetry), config(), Sink())
    request = spans(*([1] * 200))
    batch = request.resource_spans[0].scope_spans[0].spans
    with caplog.at_level("WARNING"):
        for start in range(0, 3000, 200):
            for j, span in enumerate(batch):
                span.name = f"GET /users/{start + j}"  # a user id in the span name: every span a new series
            await connector.consume_traces(request)
    assert connector.spans.series_count == 2001  # the default limit, 2000, plus the overflow series
    assert telemetry.registry.get_sample_value(
        "otelgw_connector_overflow_items_total", {"connector": "spanmetrics"}) == 1000  # counted as it happens
    warnings = [r for r in caplog.records if "cardinality limit was reached" in r.getMessage()]
    assert len(warnings) == 1


def _calls(requests: list[Any]) -> dict[tuple[str, str], int]:
    return {(attrs(p)["service.name"], attrs(p)["span.name"]): p.as_int
            for request in requests for rm in request.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics if m.name.endswith(".calls") for p in m.sum.data_points}


@pytest.mark.parametrize("temporality", ["AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"])
def test_a_flush_comes_in_pieces_and_spans_arriving_between_them_are_neither_lost_nor_counted_twice(temporality):
    aggregator = SpanAggregator(config(aggregation_cardinality_limit=0, aggregation_temporality=temporality))
    for service in ("a", "b"):
        for _ in range(10):
            aggregator.add(spans(*([1] * 250), service=service))  # 2500 spans of one series per service...
        for i in range(2500):  # ...and 2500 series of one span each
            aggregator.add(spans(1, name=f"op-{i}", service=service))
    pieces = []
    for piece in aggregator.build_batches(max_series=1000):
        pieces.append(piece)
        points = sum(len(m.sum.data_points) for rm in piece.resource_metrics for sm in rm.scope_metrics
                     for m in sm.metrics if m.name.endswith(".calls"))
        assert points <= 1000
        if len(pieces) == 2:  # the event loop runs here in a flush: spans arrive for old and new series
            aggregator.add(spans(1, 1, name="GET /orders", service="a"))
            aggregator.add(spans(1, name="arrived-later", service="b"))
    assert len(pieces) == 6  # 5002 series in pieces of 1000
    later = _calls([aggregator.build()])
    if temporality == "AGGREGATION_TEMPORALITY_DELTA":
        # Resource a was being sent: its new spans count in the next interval. Resource b had not been reached
        # yet: its new span went out with this flush. Either way exactly once.
        assert later == {("a", "GET /orders"): 2}
        now = _calls(pieces)
        assert now[("b", "arrived-later")] == 1 and now[("a", "GET /orders")] == 2500 and len(now) == 5003
    else:
        assert later[("b", "arrived-later")] == 1 and later[("a", "op-7")] == 1 and len(later) == 5003
        assert (later[("a", "GET /orders")], later[("b", "GET /orders")]) == (2502, 2500)
