"""The transform processor: README examples loaded and run, groups and short form, error modes, wire bytes."""

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
from gateway.errors import ConfigError, RetryableError
from gateway.ottl import from_any, set_any
from gateway.testing import Sink, settings_for
from gateway.wirebytes import ForgetWireBytes, attached, wire_bytes
from plugins.processors.transform.factory import factory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from readme_examples import build, load_example, yaml_blocks

README = "plugins/processors/transform/README.md"


def attrs(message: Any) -> dict[str, Any]:
    return {kv.key: from_any(kv.value) for kv in message.attributes}


def traces(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    batch = ExportTraceServiceRequest()
    rs = batch.resource_spans.add()
    for key, value in (resource or {"service.name": "checkout"}).items():
        set_any(rs.resource.attributes.add(key=key).value, value)
    ss = rs.scope_spans.add()
    for i, fields in enumerate(spans):
        span = ss.spans.add(trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8,
                            name=fields.get("name", "op"), kind=fields.get("kind", 2))
        for key, value in fields.get("attributes", {}).items():
            set_any(span.attributes.add(key=key).value, value)
    return batch


def the_spans(sink: Sink) -> list[Any]:
    return [s for b in sink.batches[Signal.TRACES] for rs in b.resource_spans for ss in rs.scope_spans
            for s in ss.spans]


async def test_readme_example_traces_and_logs(tmp_path: Path) -> None:
    configs = load_example(yaml_blocks(README)[0], tmp_path)
    processor, sink = build(configs["transform"], "transform", Signal.TRACES)
    await processor.consume_traces(traces(
        {"name": "GET /orders", "kind": 2, "attributes": {
            "http.request.header.authorization": "Bearer x", "http.request.method": "GET",
            "http.url": "https://a/b?token=abc&x=1", "http.response.status_code": 503, "long": "x" * 5000}},
        {"name": "call", "kind": 3, "attributes": {"http.url": "https://a/b?token=abc",
                                                   "http.response.status_code": 200}}))
    server, client = the_spans(sink)
    assert attrs(server) == {"http.request.method": "GET", "http.url": "https://a/b?token=***&x=1",
                             "http.response.status_code": 503, "long": "x" * 4096, "http.method": "GET"}
    assert server.status.code == 2
    assert attrs(client)["http.url"] == "https://a/b?token=abc"  # kind CLIENT: not rewritten
    assert client.status.code == 0

    processor, sink = build(configs["transform"], "transform", Signal.LOGS)
    batch = ExportLogsServiceRequest()
    records = batch.resource_logs.add().scope_logs.add().log_records
    records.add().body.string_value = '{"level": "error", "user": "ann"}'
    records.add().body.string_value = "plain text"
    await processor.consume_logs(batch)
    parsed, plain = sink.batches[Signal.LOGS][0].resource_logs[0].scope_logs[0].log_records
    assert attrs(parsed) == {"level": "error", "user": "ann"} and parsed.severity_text == "ERROR"
    assert attrs(plain) == {} and plain.severity_text == ""


async def test_readme_example_short_form(tmp_path: Path) -> None:
    configs = load_example(yaml_blocks(README)[1], tmp_path)
    processor, sink = build(configs["transform/short"], "transform/short", Signal.TRACES)
    await processor.consume_traces(traces({"name": "GET /users/123/orders/9"}))
    [span] = the_spans(sink)
    assert span.name == "GET /users/{id}/orders/{id}"
    assert from_any(sink.batches[Signal.TRACES][0].resource_spans[0].resource.attributes[1].value) == "production"

    processor, sink = build(configs["transform/short"], "transform/short", Signal.METRICS)
    batch = ExportMetricsServiceRequest()
    rm = batch.resource_metrics.add()
    set_any(rm.resource.attributes.add(key="deployment.environment").value, "staging")
    metric = rm.scope_metrics.add().metrics.add(name="http.server.duration")
    metric.gauge.data_points.add(as_double=1.0)
    await processor.consume_metrics(batch)
    out = sink.batches[Signal.METRICS][0].resource_metrics[0].scope_metrics[0].metrics[0]
    assert out.unit == "ms" and attrs(out.gauge.data_points[0]) == {"env": "staging"}


async def test_readme_example_dollar_dollar(tmp_path: Path) -> None:
    configs = load_example(yaml_blocks(README)[2], tmp_path)
    processor, sink = build(configs["transform/ids"], "transform/ids", Signal.TRACES)
    await processor.consume_traces(traces({"attributes": {"http.target": "/users/42/cart"}}))
    assert attrs(the_spans(sink)[0]) == {"http.target": "/users/{id:42}/cart"}


def config(data: dict[str, Any]) -> Any:
    return decode(factory.create_default_config(), data)


def test_config_errors_come_together_with_positions() -> None:
    errors = validate_tree(config({"error_mode": "loud", "trace_statements": [
        {"context": "span", "statements": ['set(attributes["x"] "y")', "set(nme, 1)"]},
        {"context": "log", "statements": ["set(name, 1)"]},
        'set(attributes["a"], 1)',
        {"statements": ['set(span.name, "x")'], "conditon": []},
    ], "log_statements": [{"context": "log", "statements": ["delete_key(attributes)"]}]}))
    text = "\n".join(errors)
    assert "error_mode: must be one of ignore, silent, propagate, got 'loud'" in text
    assert ("trace_statements::0::statements::0: unexpected '\"y\"' at column 21; expected \")\", \",\""
            in text)
    assert "trace_statements::0::statements::1: invalid path in the span context: nme" in text
    assert "trace_statements::1::context: must be one of resource, scope, span, spanevent for traces" in text
    assert "trace_statements::2: cannot infer the context" in text
    assert "trace_statements::3::conditon: unknown key" in text
    assert "log_statements::0::statements::0: delete_key: missing argument 'key'" in text
    assert len(errors) == 7


async def run_traces(data: dict[str, Any], batch: ExportTraceServiceRequest,
                     telemetry: Telemetry | None = None) -> tuple[Sink, Any]:
    telemetry = telemetry or Telemetry()
    sink = Sink()
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "transform", Signal.TRACES, telemetry), config(data), sink)
    await processor.consume_traces(batch)
    return sink, telemetry


FAILING = {"context": "span", "statements": ['set(attributes["parsed"], ParseJSON(attributes["body"]))',
                                             'set(attributes["seen"], true)']}


def two_spans() -> ExportTraceServiceRequest:
    return traces({"name": "good", "attributes": {"body": '{"a": 1}'}},
                  {"name": "bad", "attributes": {"body": "not json"}})


@pytest.mark.parametrize("mode", ["ignore", "silent"])
async def test_ignore_and_silent_keep_going(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    sink, telemetry = await run_traces({"error_mode": mode, "trace_statements": [FAILING]}, two_spans())
    good, bad = the_spans(sink)
    assert attrs(good) == {"body": '{"a": 1}', "parsed": {"a": 1}, "seen": True}
    assert attrs(bad) == {"body": "not json", "seen": True}  # the next statement still ran
    count = telemetry.registry.get_sample_value("otelgw_processor_ottl_errors_total", {
        "processor": "transform", "otel_signal": "traces", "statement": FAILING["statements"][0]})
    assert count == 1
    logged = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    if mode == "silent":
        assert logged == []
    else:
        [message] = logged
        assert FAILING["statements"][0] in message and "span context" in message
        assert "span 'bad' trace_id=" + "02" * 16 + " span_id=" + "02" * 8 in message


async def test_ignore_logs_at_most_once_per_statement_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    batch = traces(*[{"name": f"s{i}", "attributes": {"body": "x"}} for i in range(50)])
    _, telemetry = await run_traces({"error_mode": "ignore", "trace_statements": [FAILING]}, batch)
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
    assert telemetry.registry.get_sample_value("otelgw_processor_ottl_errors_total", {
        "processor": "transform", "otel_signal": "traces", "statement": FAILING["statements"][0]}) == 50


async def test_propagate_refuses_the_batch_with_a_retryable_error_naming_statement_and_item() -> None:
    with pytest.raises(RetryableError) as info:
        await run_traces({"trace_statements": [FAILING]}, two_spans())  # propagate is the default
    message = str(info.value)
    assert "error_mode: propagate" in message and FAILING["statements"][0] in message
    assert "span 'bad'" in message and "span_id=" + "02" * 8 in message


async def test_a_group_error_mode_overrides_the_processors() -> None:
    sink, _ = await run_traces({"error_mode": "propagate",
                                "trace_statements": [{**FAILING, "error_mode": "ignore"}]}, two_spans())
    assert len(the_spans(sink)) == 2


async def test_group_conditions_are_ored_and_resource_conditions_run_per_envelope() -> None:
    batch = traces({"name": "a"}, {"name": "b"}, resource={"service.name": "checkout"})
    other = traces({"name": "c"}, resource={"service.name": "billing"})
    batch.resource_spans.append(other.resource_spans[0])
    sink, _ = await run_traces({"trace_statements": [{
        "context": "span",
        "conditions": ['resource.attributes["service.name"] == "checkout"', 'name == "c"'],
        "statements": ['set(attributes["hit"], true)',
                       'set(attributes["res"], true) where resource.attributes["service.name"] == "billing"']}]},
        batch)
    assert [attrs(s) for s in the_spans(sink)] == [{"hit": True}, {"hit": True}, {"hit": True, "res": True}]


async def test_a_resource_write_is_seen_by_later_resource_conditions() -> None:
    sink, _ = await run_traces({"trace_statements": [{"context": "span", "statements": [
        'set(resource.attributes["tier"], "gold")',
        'set(attributes["gold"], true) where resource.attributes["tier"] == "gold"']}]}, traces({"name": "a"}))
    assert attrs(the_spans(sink)[0]) == {"gold": True}


async def test_spanevent_and_cache() -> None:
    batch = traces({"name": "a"})
    span = batch.resource_spans[0].scope_spans[0].spans[0]
    event = span.events.add(name="exception")
    set_any(event.attributes.add(key="exception.message").value, "x" * 20)
    sink, _ = await run_traces({"trace_statements": [
        {"context": "spanevent", "statements": [
            'set(attributes["span"], span.name) where name == "exception"',
            'set(cache["len"], Len(attributes["exception.message"]))',
            'set(attributes["len"], cache["len"])']}]}, batch)
    out = the_spans(sink)[0].events[0]
    assert attrs(out) == {"exception.message": "x" * 20, "span": "a", "len": 20}


async def test_wire_bytes_survive_when_no_statement_ran_and_are_forgotten_otherwise() -> None:
    seen: list[bytes | None] = []

    class Probe:
        async def consume_traces(self, batch: Any) -> None:
            seen.append(wire_bytes(batch))

    for name, expect_bytes in (("nothing matches", True), ("target", False)):
        processor = factory.create_traces(  # type: ignore[misc]
            settings_for(Kind.PROCESSOR, "transform", Signal.TRACES),
            config({"trace_statements": ['set(span.attributes["x"], 1) where span.name == "target"']}),
            ForgetWireBytes(Probe()))
        batch = traces({"name": name})
        data = batch.SerializeToString()
        with attached(batch, data):
            await processor.consume_traces(batch)
        assert (seen[-1] == data) is expect_bytes


def test_unknown_context_in_a_short_statement_for_the_signal() -> None:
    with pytest.raises(ConfigError, match="the log context is not available for traces"):
        config({"trace_statements": ['set(log.body, "x")']}).groups("traces")


BENCH_STATEMENTS = ['delete_key(attributes, "peer")', 'set(attributes["method"], attributes["http.request.method"])',
                    "truncate_all(attributes, 4)",
                    'replace_pattern(attributes["route"], "[0-9]+", "{id}") where kind == 2']


def bench_batch() -> ExportTraceServiceRequest:
    return traces({"kind": 2, "attributes": {"peer": "10.0.0.1", "http.request.method": "GET", "route": "/a/12"}},
                  {"kind": 3, "attributes": {"route": "/b/7", "long": "abcdefgh"}})


async def test_with_received_bytes_the_statements_run_on_them_and_the_result_goes_on_as_bytes() -> None:
    expected = bench_batch()
    slow = Sink()
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "transform", Signal.TRACES),
        config({"trace_statements": [{"context": "span", "statements": BENCH_STATEMENTS}]}), slow)
    await processor.consume_traces(expected)  # no bytes: the parsed request is changed in place
    received: list[Any] = []

    class WireTaker:
        async def consume_traces(self, batch: Any) -> None:
            received.append(("message", batch, wire_bytes(batch)))

        async def consume_wire(self, batch: Any) -> None:
            received.append(("wire", batch))

    for downstream in (ForgetWireBytes(WireTaker()), ForgetWireBytes(Sink())):
        processor = factory.create_traces(  # type: ignore[misc]
            settings_for(Kind.PROCESSOR, "transform", Signal.TRACES),
            config({"trace_statements": [{"context": "span", "statements": BENCH_STATEMENTS}]}), downstream)
        batch = bench_batch()
        data = batch.SerializeToString()
        with attached(batch, data):
            await processor.consume_traces(batch)
        assert batch == bench_batch()  # the received request itself is left as it was
    [(kind, wire_batch)] = received
    assert kind == "wire" and wire_batch.items == 2
    assert ExportTraceServiceRequest.FromString(wire_batch.data) == slow.batches[Signal.TRACES][0]
    assert attrs(the_spans(slow)[0]) == {"http.request.method": "GET", "route": "/a/{id}", "method": "GET"}


async def test_with_received_bytes_a_consumer_without_wire_gets_the_parse_with_its_bytes() -> None:
    seen: list[tuple[Any, bytes | None]] = []

    class Probe:
        async def consume_traces(self, batch: Any) -> None:
            seen.append((batch, wire_bytes(batch)))

    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "transform", Signal.TRACES),
        config({"trace_statements": [{"context": "span", "statements": BENCH_STATEMENTS}]}), ForgetWireBytes(Probe()))
    batch = bench_batch()
    with attached(batch, batch.SerializeToString()):
        await processor.consume_traces(batch)
    [(message, data)] = seen
    assert data is not None and ExportTraceServiceRequest.FromString(data) == message
    assert attrs(message.resource_spans[0].scope_spans[0].spans[1]) == {"route": "/b/7", "long": "abcd"}


async def test_with_received_bytes_errors_propagate_as_on_the_parsed_request() -> None:
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "transform", Signal.TRACES), config({"trace_statements": [FAILING]}), Sink())
    batch = two_spans()
    with attached(batch, batch.SerializeToString()), pytest.raises(RetryableError) as info:
        await processor.consume_traces(batch)
    assert "span 'bad'" in str(info.value) and FAILING["statements"][0] in str(info.value)
