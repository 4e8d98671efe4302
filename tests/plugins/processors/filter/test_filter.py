"""The filter processor: README example loaded and run, drops counted per condition, error modes, empties."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import RetryableError
from gateway.ottl import set_any
from gateway.testing import Sink, settings_for
from plugins.processors.filter.factory import factory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from readme_examples import build, load_example, yaml_blocks

README = "plugins/processors/filter/README.md"


def traces(groups: list[tuple[str, list[tuple[str, dict[str, Any]]]]]) -> ExportTraceServiceRequest:
    """[(service, [(span name, attributes)])]: one resource per service."""
    batch = ExportTraceServiceRequest()
    for service, spans in groups:
        rs = batch.resource_spans.add()
        set_any(rs.resource.attributes.add(key="service.name").value, service)
        ss = rs.scope_spans.add()
        for i, (name, attributes) in enumerate(spans):
            span = ss.spans.add(name=name, trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8)
            for key, value in attributes.items():
                set_any(span.attributes.add(key=key).value, value)
    return batch


def names(batches: list[Any]) -> list[str]:
    return [s.name for b in batches for rs in b.resource_spans for ss in rs.scope_spans for s in ss.spans]


async def test_readme_example(tmp_path: Path) -> None:
    [block] = yaml_blocks(README)
    configs = load_example(block, tmp_path)
    telemetry = Telemetry()
    sink = Sink()
    component = configs["filter/health"]
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "filter/health", Signal.TRACES, telemetry), component.config, sink)
    batch = traces([("checkout", [("GET /orders", {"http.route": "/orders"}), ("GET /x", {"http.route": "/healthz"}),
                                  ("GET /ready", {}), ("POST /pay", {})]),
                    ("synthetic-probe", [("GET /orders", {}), ("GET /cart", {})])])
    span = batch.resource_spans[0].scope_spans[0].spans[3]
    span.events.add(name="debug")
    span.events.add(name="exception")
    await processor.consume_traces(batch)
    [out] = sink.batches[Signal.TRACES]
    assert names([out]) == ["GET /orders", "POST /pay"]
    assert [e.name for e in out.resource_spans[0].scope_spans[0].spans[1].events] == ["exception"]
    assert len(out.resource_spans) == 1  # the probe's resource was dropped whole
    sample = telemetry.registry.get_sample_value
    for context, condition, count in [
        ("span", 'attributes["http.route"] == "/healthz"', 1),
        ("span", 'IsMatch(name, "^GET /(health|ready|live)")', 1),
        ("span", 'resource.attributes["service.name"] == "synthetic-probe"', 2),
        ("spanevent", 'name == "debug"', 1),
    ]:
        assert sample("otelgw_processor_filter_dropped_items_total", {
            "processor": "filter/health", "otel_signal": "traces", "context": context,
            "condition": condition}) == count, condition
    assert sample("otelcol_processor_incoming_items_total",
                  {"processor": "filter/health", "otel_signal": "traces"}) == 6
    assert sample("otelcol_processor_outgoing_items_total",
                  {"processor": "filter/health", "otel_signal": "traces"}) == 2
    # the spans dropped, in the drop accounting every component shares (span events are not items)
    assert sample("otelgw_component_dropped_items_total",
                  {"component": "filter/health", "otel_signal": "traces", "reason": "filtered"}) == 4
    assert telemetry.dropped_items() == 0  # a filter doing its job loses nothing

    processor, sink = build(component, "filter/health", Signal.METRICS)
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    set_any(rm.resource.attributes.add(key="env").value, "dev")
    scope = rm.scope_metrics.add()
    scope.metrics.add(name="jvm.gc.duration").gauge.data_points.add(as_double=1)
    requests = scope.metrics.add(name="http.requests")
    for route in ("/healthz", "/orders"):
        set_any(requests.sum.data_points.add(as_int=1).attributes.add(key="http.route").value, route)
    only_health = scope.metrics.add(name="probe.requests")
    set_any(only_health.sum.data_points.add(as_int=1).attributes.add(key="http.route").value, "/healthz")
    await processor.consume_metrics(metrics)
    [out_metrics] = sink.batches[Signal.METRICS]
    kept = out_metrics.resource_metrics[0].scope_metrics[0].metrics
    assert [m.name for m in kept] == ["http.requests"]  # probe.requests lost its only point, so it went too
    assert len(kept[0].sum.data_points) == 1

    processor, sink = build(component, "filter/health", Signal.LOGS)
    logs = ExportLogsServiceRequest()
    records = logs.resource_logs.add().scope_logs.add().log_records
    for severity, body in ((5, "debug line"), (9, "GET /healthz 200"), (17, "payment failed")):
        records.add(severity_number=severity).body.string_value = body
    await processor.consume_logs(logs)
    [out_logs] = sink.batches[Signal.LOGS]
    assert [r.body.string_value for r in out_logs.resource_logs[0].scope_logs[0].log_records] == ["payment failed"]


async def run(data: dict[str, Any], batch: ExportTraceServiceRequest) -> tuple[Sink, Telemetry]:
    telemetry = Telemetry()
    sink = Sink()
    config = decode(factory.create_default_config(), data)
    assert validate_tree(config) == []
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "filter", Signal.TRACES, telemetry), config, sink)
    await processor.consume_traces(batch)
    return sink, telemetry


async def test_a_batch_left_empty_is_not_handed_on() -> None:
    sink, _ = await run({"traces": {"span": ["true"]}}, traces([("a", [("x", {})])]))
    assert sink.batches[Signal.TRACES] == []


FAILING = 'ParseJSON(attributes["body"])["drop"] == true'


def bodies() -> ExportTraceServiceRequest:
    return traces([("a", [("drop-me", {"body": '{"drop": true}'}), ("bad", {"body": "not json"}),
                          ("keep", {"body": '{"drop": false}'})])])


@pytest.mark.parametrize("mode", ["ignore", "silent"])
async def test_a_failing_condition_counts_as_false(mode: str) -> None:
    sink, telemetry = await run({"error_mode": mode, "traces": {"span": [FAILING]}}, bodies())
    assert names(sink.batches[Signal.TRACES]) == ["bad", "keep"]
    assert telemetry.registry.get_sample_value("otelgw_processor_ottl_errors_total", {
        "processor": "filter", "otel_signal": "traces", "statement": FAILING}) == 1


async def test_propagate_refuses_the_whole_batch() -> None:
    with pytest.raises(RetryableError, match="span 'bad'"):
        await run({"error_mode": "propagate", "traces": {"span": [FAILING]}}, bodies())


def test_config_errors() -> None:
    config = decode(factory.create_default_config(), {"error_mode": "x", "traces": {"spans": [], "span": [
        'name == "a" and', "nme == 1"]}, "logs": {"log_record": ["severity_number > SEVERITY_NUMBER_BAD"]}})
    errors = validate_tree(config)
    text = "\n".join(errors)
    assert "traces::spans: unknown key; valid keys are: span, spanevent" in text
    assert "traces::span::0: unexpected end of statement at column 16" in text
    assert "traces::span::1: invalid path in the span context: nme" in text
    assert "logs::log_record::0: unknown enum SEVERITY_NUMBER_BAD at column 19" in text
    assert "error_mode: must be one of" in text
