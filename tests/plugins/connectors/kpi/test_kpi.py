"""kpi behaviour: each KPI type, the match conditions, labels, limits, and one engine for spans and logs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import hashable_value
from gateway._host.config import build_config
from gateway._host.graph import Graph
from gateway._host.registry import load_registry
from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import any_value, make_host
from plugins.connectors.kpi import engine as engine_module
from plugins.connectors.kpi.engine import KpiEngine
from plugins.connectors.kpi.factory import factory

S = 1_000_000_000
NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


def engine(*kpis: dict[str, Any], **options: Any) -> KpiEngine:
    config = decode(factory.create_default_config(), {"kpis": list(kpis), **options})
    assert validate_tree(config) == []
    return KpiEngine(config)


def traces(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    """Spans as dicts: name, seconds, kind, status, attributes."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in {"service.name": "svc", **(resource or {})}.items():
        rs.resource.attributes.add(key=key).value.CopyFrom(any_value(value))
    ss = rs.scope_spans.add()
    for spec in spans:
        span = ss.spans.add(name=spec.get("name", "op"), kind=spec.get("kind", 2))
        span.start_time_unix_nano = 1_700_000_000 * S
        span.end_time_unix_nano = span.start_time_unix_nano + round(spec.get("seconds", 0.1) * S)
        span.status.code = spec.get("status", 0)
        for key, value in spec.get("attributes", {}).items():
            span.attributes.add(key=key).value.CopyFrom(any_value(value))
    return request


def logs(*records: dict[str, Any], resource: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    """Log records as dicts: event, severity, attributes; event_attribute puts the name in event.name instead."""
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    for key, value in {"service.name": "svc", **(resource or {})}.items():
        rl.resource.attributes.add(key=key).value.CopyFrom(any_value(value))
    sl = rl.scope_logs.add()
    for spec in records:
        record = sl.log_records.add(severity_number=spec.get("severity", 9))
        if spec.get("event_attribute"):
            record.attributes.add(key="event.name").value.string_value = spec["event"]
        else:
            record.event_name = spec.get("event", "")
        for key, value in spec.get("attributes", {}).items():
            record.attributes.add(key=key).value.CopyFrom(any_value(value))
    return request


def points(kpi_engine: KpiEngine, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    """{sorted attributes: value} of one metric in the engine's output (value, or (counts, sum, count))."""
    out = kpi_engine.build()
    assert out is not None
    [metric] = [m for m in out.resource_metrics[0].scope_metrics[0].metrics if m.name == name]
    data = metric.WhichOneof("data")
    result = {}
    for p in getattr(metric, data).data_points:
        key = tuple(sorted((kv.key, hashable_value(kv.value)) for kv in p.attributes))
        result[key] = (list(p.bucket_counts), p.sum, p.count) if data == "histogram" else p.as_double
    return result


def test_counter_counts_matches_or_sums_an_attribute_and_never_goes_down():
    e = engine({"name": "calls", "match": {"span_names": ["a"]}},
               {"name": "tokens", "value": "tokens", "match": {"span_names": ["a"]}})
    e.add_traces(traces({"name": "a", "attributes": {"tokens": 100}}, {"name": "a", "attributes": {"tokens": "25"}},
                        {"name": "a", "attributes": {"tokens": -5}}, {"name": "a"}, {"name": "b"}))
    assert points(e, "calls") == {(): 4}
    assert points(e, "tokens") == {(): 125}  # "25" parses; -5 would make a counter go down; no value: skipped
    out = e.build()
    sum_ = out.resource_metrics[0].scope_metrics[0].metrics[0].sum
    assert sum_.is_monotonic and sum_.aggregation_temporality == 2


def test_histogram_of_duration_or_of_an_attribute():
    e = engine({"name": "latency", "type": "histogram", "value": "duration", "unit": "ms", "buckets": [100, 500]},
               {"name": "wait", "type": "histogram", "value": "wait", "unit": "s", "buckets": [10, 20]})
    e.add_traces(traces({"seconds": 0.1, "attributes": {"wait": 10}}, {"seconds": 0.2, "attributes": {"wait": 15.5}},
                        {"seconds": 2, "attributes": {"wait": "n/a"}}))
    assert points(e, "latency") == {(): ([1, 1, 1], pytest.approx(2300), 3)}
    assert points(e, "wait") == {(): ([1, 1, 0], 25.5, 2)}


def test_gauge_keeps_the_last_value_and_updown_follows_paired_events():
    e = engine({"name": "temperature", "type": "gauge", "value": "celsius", "signal": "logs",
                "match": {"event_names": ["reading"]}},
               {"name": "depth", "type": "updown", "signal": "logs", "increment": {"event_names": ["enter"]},
                "decrement": {"event_names": ["leave"]}, "labels": [{"name": "queue"}]})
    e.add_logs(logs({"event": "reading", "attributes": {"celsius": 20}},
                    {"event": "reading", "attributes": {"celsius": 21.5}},
                    *[{"event": "enter", "attributes": {"queue": "q1"}}] * 3,
                    {"event": "leave", "attributes": {"queue": "q1"}},
                    {"event": "leave", "attributes": {"queue": "q2"}}))
    assert points(e, "temperature") == {(): 21.5}
    assert points(e, "depth") == {(("queue", "q1"),): 2, (("queue", "q2"),): -1}
    out = e.build()
    depth = next(m for m in out.resource_metrics[0].scope_metrics[0].metrics if m.name == "depth")
    assert not depth.sum.is_monotonic  # an up/down counter: a Prometheus gauge


def test_ratio_over_a_window_with_a_weighted_value(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock[0])
    e = engine({"name": "sla", "type": "ratio", "unit": "1", "window": "10m", "match": {"span_names": ["call"]},
                "numerator": {"duration_ms": {"lte": 20_000}}, "labels": [{"name": "queue"}]},
               {"name": "busy", "type": "ratio", "unit": "1", "signal": "logs", "value": "seconds",
                "numerator": {"attributes": {"state": "busy"}}})
    e.add_traces(traces(*[{"name": "call", "seconds": s, "attributes": {"queue": "q"}} for s in (5, 15, 25, 40)]))
    e.add_logs(logs({"attributes": {"state": "busy", "seconds": 30}}, {"attributes": {"state": "idle", "seconds": 90}}))
    assert points(e, "sla") == {(("queue", "q"),): 0.5}
    assert points(e, "busy") == {(): 0.25}
    # the window's sums go out beside each ratio, so replicas' parts can be added
    assert points(e, "sla.numerator") == {(("queue", "q"),): 2.0}
    assert points(e, "sla.denominator") == {(("queue", "q"),): 4.0}
    assert points(e, "busy.numerator") == {(): 30.0} and points(e, "busy.denominator") == {(): 120.0}
    clock[0] += 300  # half a window later two more calls, both within 20 s
    e.add_traces(traces(*[{"name": "call", "seconds": 1, "attributes": {"queue": "q"}}] * 2))
    assert points(e, "sla") == {(("queue", "q"),): pytest.approx(4 / 6)}
    clock[0] += 400  # the first four calls have left the 10-minute window
    assert points(e, "sla") == {(("queue", "q"),): 1.0}
    assert points(e, "sla.numerator") == {(("queue", "q"),): 2.0} == points(e, "sla.denominator")
    clock[0] += 1000  # everything has left: no value rather than a division by zero
    out = e.build()
    assert out is not None
    ended = {m.name: list(m.gauge.data_points) for m in out.resource_metrics[0].scope_metrics[0].metrics}
    # sent once more as "no recorded value", so an exporter drops the series instead of keeping its last value
    assert set(ended) == {"sla", "sla.numerator", "sla.denominator"}
    for point in [p for points in ended.values() for p in points]:
        assert point.flags == NO_RECORDED_VALUE and point.WhichOneof("value") is None
        assert [(kv.key, kv.value.string_value) for kv in point.attributes] == [("queue", "q")]
    assert e.build() is None  # and then never again


def test_ratio_by_a_numerator_only_label_divides_by_all_records():
    e = engine({"name": "handoff", "type": "ratio", "unit": "1",
                "numerator": {"attributes": {"reason": {"exists": True}}},
                "labels": [{"name": "agent"}, {"name": "reason", "numerator_only": True}]})
    e.add_traces(traces(*[{"attributes": {"agent": "bot", **({"reason": r} if r else {})}}
                          for r in ("price", None, "price", "angry", None, None, None, None)]))
    assert points(e, "handoff") == {(("agent", "bot"), ("reason", "price")): 0.25,
                                    (("agent", "bot"), ("reason", "angry")): 0.125}
    # the denominator has only the labels that split it: every turn of the agent
    assert points(e, "handoff.numerator") == {(("agent", "bot"), ("reason", "price")): 2.0,
                                              (("agent", "bot"), ("reason", "angry")): 1.0}
    assert points(e, "handoff.denominator") == {(("agent", "bot"),): 8.0}


def test_ratio_parts_of_two_engines_add_up_to_the_ratio_of_all_records():
    kpi = {"name": "sla", "type": "ratio", "unit": "1", "numerator": {"status_codes": ["ok"]},
           "labels": [{"name": "queue"}]}
    calls = [{"status": 1 if i % 3 else 2, "attributes": {"queue": f"q{i % 2}"}} for i in range(30)]
    whole, first, second = engine(kpi), engine(kpi), engine(kpi)
    whole.add_traces(traces(*calls))
    first.add_traces(traces(*calls[::2][:7], *calls[1::2]))  # an uneven share each
    second.add_traces(traces(*calls[::2][7:]))
    for queue in ("q0", "q1"):
        key = (("queue", queue),)
        numerator = sum(points(e, "sla.numerator").get(key, 0.0) for e in (first, second))
        denominator = sum(points(e, "sla.denominator").get(key, 0.0) for e in (first, second))
        assert numerator / denominator == pytest.approx(points(whole, "sla")[key])
    key = (("queue", "q0"),)  # split between the two: each share's own ratio is off (4/7 against 10/15)
    assert points(first, "sla")[key] == pytest.approx(4 / 7) and points(whole, "sla")[key] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("condition", "values", "matches"), [
    ("x", ["x", "y", None], [True, False, False]),
    (200, [200, "200", 200.0, 201, None], [True, True, True, False, False]),
    (True, [True, "true", False, 1], [True, True, False, False]),
    ({"ne": "x"}, ["x", "y", None], [False, True, True]),
    ({"one_of": ["a", 1]}, ["a", 1, "1", "b", None], [True, True, True, False, False]),
    ({"none_of": ["a"]}, ["a", "b", None], [False, True, True]),
    ({"exists": True}, ["", "a", 0, None], [True, True, True, False]),
    ({"exists": False}, ["a", None], [False, True]),
    ({"gt": 1, "lte": 3}, [1, 2, 3, "2.5", 4, "x", True, None], [False, True, True, True, False, False, False, False]),
    ({"regex": "^GET /users/[0-9]+$"}, ["GET /users/17", "GET /users/x", None], [True, False, False]),
])
def test_attribute_conditions(condition, values, matches):
    e = engine({"name": "n", "match": {"attributes": {"k": condition}}, "labels": [{"name": "i"}]})
    e.add_traces(traces(*[{"attributes": {"i": i, **({} if v is None else {"k": v})}} for i, v in enumerate(values)]))
    out = e.build()
    matched = set() if out is None else {dict(key)["i"] for key in points(e, "n")}
    assert matched == {i for i, wanted in enumerate(matches) if wanted}


def test_span_fields_resource_and_log_conditions():
    e = engine({"name": "spans", "match": {"span_name_regex": "^GET ", "span_kinds": ["server"],
                                           "status_codes": ["error"], "resource": {"env": "prod"}}},
               {"name": "events", "signal": "logs", "match": {"event_names": ["paid"], "min_severity": "WARN"}})
    e.add_traces(traces({"name": "GET /a", "status": 2}, {"name": "GET /b", "status": 2, "kind": 3},
                        {"name": "POST /a", "status": 2}, {"name": "GET /c", "status": 1}, resource={"env": "prod"}))
    e.add_traces(traces({"name": "GET /a", "status": 2}, resource={"env": "dev"}))
    e.add_logs(logs({"event": "paid", "severity": 13}, {"event": "paid", "severity": 9},
                    {"event": "paid", "severity": 17, "event_attribute": True}, {"event": "other", "severity": 21}))
    assert points(e, "spans") == {(): 1}
    assert points(e, "events") == {(): 2}  # the event name is read from the field, or the event.name attribute


def test_labels_from_attributes_resource_pseudo_fields_defaults_and_constants():
    e = engine({"name": "n", "labels": [
        {"name": "route", "attribute": "http.route"}, {"name": "region"}, {"name": "span.name"},
        {"name": "kind", "attribute": "span.kind"}, {"name": "status", "attribute": "status.code"},
        {"name": "tier", "default": "free"}, {"name": "absent"}, {"name": "source", "value": "kpi"}]})
    e.add_traces(traces({"name": "GET", "status": 2, "attributes": {"http.route": "/a"}}, resource={"region": "eu"}))
    assert points(e, "n") == {(("kind", "server"), ("region", "eu"), ("route", "/a"), ("source", "kpi"),
                               ("span.name", "GET"), ("status", "error"), ("tier", "free")): 1}


def test_kpis_sharing_a_name_feed_one_metric():
    e = engine({"name": "tokens", "value": "in", "labels": [{"name": "type", "value": "input"}]},
               {"name": "tokens", "value": "out", "labels": [{"name": "type", "value": "output"}]})
    e.add_traces(traces({"attributes": {"in": 10, "out": 3}}, {"attributes": {"in": 5, "out": 1}}))
    out = e.build()
    assert [m.name for m in out.resource_metrics[0].scope_metrics[0].metrics] == ["tokens"]
    assert points(e, "tokens") == {(("type", "input"),): 15, (("type", "output"),): 4}


def test_cardinality_limit_folds_new_label_sets_into_an_overflow_series():
    e = engine({"name": "n", "labels": [{"name": "user"}], "cardinality_limit": 3},
               {"name": "r", "type": "ratio", "numerator": {"attributes": {"ok": True}}, "labels": [{"name": "user"}]},
               aggregation_cardinality_limit=2)
    e.add_traces(traces(*[{"attributes": {"user": f"u{i}", "ok": i % 2 == 0}} for i in range(100)]))
    counts = points(e, "n")
    assert len(counts) == 4 and counts[(("otel.metric.overflow", True),)] == 97 and sum(counts.values()) == 100
    ratios = points(e, "r")
    assert len(ratios) == 3 and ratios[(("otel.metric.overflow", True),)] == pytest.approx(49 / 98)
    assert e.overflowed > 0 and e.series_count == 4 + 3 + 3  # n; r's numerators and denominators


def test_label_sets_not_updated_expire(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock[0])
    e = engine({"name": "n", "labels": [{"name": "user"}]}, metrics_expiration="1m")
    e.add_traces(traces({"attributes": {"user": "old"}}))
    clock[0] = 100
    e.add_traces(traces({"attributes": {"user": "new"}}))
    assert points(e, "n") == {(("user", "new"),): 1}


def test_output_resource_and_scope():
    e = engine({"name": "n"}, resource_attributes={"service.name": "kpis", "team": "ops"})
    e.add_traces(traces({}))
    out = e.build()
    resource = {kv.key: kv.value.string_value for kv in out.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "kpis" and resource["team"] == "ops" and resource["service.instance.id"]
    assert out.resource_metrics[0].scope_metrics[0].scope.name == "kpi"


def test_spans_whose_names_no_kpi_can_match_are_skipped_before_their_attributes_are_read():
    e = engine({"name": "n", "match": {"span_names": ["wanted"]}})
    request = traces(*[{"name": "other", "attributes": {"k": "v"}}] * 10, {"name": "wanted"})
    e.add_traces(request)
    assert points(e, "n") == {(): 1}
    assert e._offered("spans", "other") == ((), frozenset())


async def test_one_engine_serves_the_traces_and_the_logs_pipelines():
    raw = yaml.safe_load("""
        receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}}
        connectors:
          kpi:
            metrics_flush_interval: 1h
            kpis:
              - {name: handled, type: ratio, signal: logs, numerator: {event_names: [resolved]}}
              - {name: calls, match: {span_names: [call]}}
        exporters: {debug: {}}
        service:
          pipelines:
            traces: {receivers: [otlp], exporters: [kpi]}
            logs: {receivers: [otlp], exporters: [kpi]}
            metrics: {receivers: [kpi], exporters: [debug]}
    """)
    graph = Graph(build_config(raw, load_registry()), Telemetry())
    host = make_host()
    await graph.start(host)
    from_traces = graph.find(Kind.CONNECTOR, "kpi", Signal.TRACES)
    from_logs = graph.find(Kind.CONNECTOR, "kpi", Signal.LOGS)
    assert from_traces is from_logs  # graph.find unwraps each signal's handle to the shared runner
    traces_node = next(n.component for n in graph.nodes if n.kind is Kind.CONNECTOR and n.signal is Signal.TRACES)
    logs_node = next(n.component for n in graph.nodes if n.kind is Kind.CONNECTOR and n.signal is Signal.LOGS)
    await traces_node.consume_traces(traces({"name": "call"}))
    await logs_node.consume_logs(logs({"event": "resolved"}, {"event": "opened"}))
    out = from_traces.engine.build()
    assert sorted(m.name for m in out.resource_metrics[0].scope_metrics[0].metrics) == [
        "calls", "handled", "handled.denominator", "handled.numerator"]
    assert await graph.shutdown(host) == []


def values(requests: list[Any]) -> dict[tuple[str, tuple[tuple[str, Any], ...]], Any]:
    """{(metric, sorted attributes): value} over requests; a series in two requests fails the test."""
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    for request in requests:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data = metric.WhichOneof("data")
                    for p in getattr(metric, data).data_points:
                        key = (metric.name, tuple(sorted((kv.key, hashable_value(kv.value)) for kv in p.attributes)))
                        assert key not in found, key
                        found[key] = (tuple(p.bucket_counts), p.count) if data == "histogram" else p.as_double
    return found


def large_engine(**options: Any) -> KpiEngine:
    e = engine({"name": "n", "labels": [{"name": "user"}]},
               {"name": "d", "type": "histogram", "buckets": [0.5, 1], "labels": [{"name": "user"}]},
               {"name": "r", "type": "ratio", "numerator": {"attributes": {"ok": True}}, "labels": [{"name": "user"}]},
               aggregation_cardinality_limit=10_000, **options)
    e.add_traces(traces(*[{"seconds": i % 3 * 0.4, "attributes": {"user": f"u{i}", "ok": i % 2 == 0}}
                          for i in range(1200)]))
    return e


def test_a_flush_comes_in_pieces_holding_each_series_once_as_one_request_would():
    now = 1_800_000_000 * S
    whole = large_engine().build(now)
    assert whole is not None
    pieces = [p for p in large_engine().build_batches(now, max_series=500) if p.resource_metrics]
    sizes = [len(values([p])) for p in pieces]
    assert sizes == [500] * 12  # 6000 points: n, d, r, and r's numerator and denominator, 1200 each
    assert values(pieces) == values([whole]) and len(values([whole])) == 6000
    assert {p.resource_metrics[0].scope_metrics[0].scope.name for p in pieces} == {"kpi"}


def test_records_arriving_between_the_pieces_of_a_flush_are_counted_once():
    e = large_engine()
    pieces = []
    for piece in e.build_batches(max_series=500):
        pieces.append(piece)
        if len(pieces) == 1:  # the event loop runs here in a flush: records arrive for old and new label sets
            e.add_traces(traces({"attributes": {"user": "u0"}}, {"attributes": {"user": "u1199"}},
                                {"attributes": {"user": "late"}}))
    now = values(pieces)
    assert now[("n", (("user", "u0"),))] == 1  # sent in the first piece, before the record came
    assert now[("n", (("user", "u1199"),))] == 2  # sent after it
    assert ("n", (("user", "late"),)) not in now  # a label set new since the flush began waits for the next
    later = values([e.build()])
    assert later[("n", (("user", "u0"),))] == 2 and later[("n", (("user", "late"),))] == 1


def test_expiry_and_ratio_windows_of_many_series_pause_between_slices(monkeypatch):
    monkeypatch.setattr(engine_module, "_SLICE", 100)
    clock = [0.0]
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock[0])
    e = large_engine(metrics_expiration="1h")
    clock[0] = 30.0  # the ratio's window (1 minute by default) still holds every record; nothing expires
    pieces = list(e.build_batches(max_series=10_000))
    pauses = [p for p in pieces if not p.resource_metrics]
    # One pause per 100 series looked at: expiry's 2400 (n and d), the ratio's 1200 numerators and 1200
    # denominators twice (window, then sums) and its 1200 divisions, the 3 x 1200 points emitted, and the
    # ratio's 2 x 1200 parts.
    assert len(pauses) == 24 + 48 + 36 + 24
    assert len(values([p for p in pieces if p.resource_metrics])) == 6000


async def test_the_flush_timer_sends_the_pieces_and_not_the_pauses(monkeypatch):
    monkeypatch.setattr(engine_module, "_SLICE", 100)
    from gateway.testing import Sink, settings_for
    from plugins.connectors.kpi.connector import KpiRunner

    sink = Sink()
    config = large_engine().config
    runner = KpiRunner(settings_for(Kind.CONNECTOR, "kpi", Signal.TRACES), config, sink)
    runner.add_traces(traces(*[{"attributes": {"user": f"u{i}"}} for i in range(1200)]))
    await runner.flush()
    sent = sink.batches[Signal.METRICS]
    # 6000 points of n, d, r and r's two parts, 500 a piece
    assert all(b.resource_metrics for b in sent) and len(sent) == 12
    assert len(values(sent)) == 6000
