"""The attributes processor: README example loaded and run, every action, include/exclude per signal."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.ottl import from_any, set_any
from gateway.testing import Sink, settings_for
from plugins.processors.attributes.factory import factory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from readme_examples import build, load_example, yaml_blocks

README = "plugins/processors/attributes/README.md"


def attrs(message: Any) -> dict[str, Any]:
    return {kv.key: from_any(kv.value) for kv in message.attributes}


def traces(service: str, spans: list[tuple[str, dict[str, Any]]], kind: int = 2) -> ExportTraceServiceRequest:
    batch = ExportTraceServiceRequest()
    rs = batch.resource_spans.add()
    set_any(rs.resource.attributes.add(key="service.name").value, service)
    ss = rs.scope_spans.add()
    ss.scope.name = "lib"
    for name, attributes in spans:
        span = ss.spans.add(name=name, kind=kind)
        for key, value in attributes.items():
            set_any(span.attributes.add(key=key).value, value)
    return batch


def spans(sink: Sink) -> list[Any]:
    return [s for b in sink.batches[Signal.TRACES] for rs in b.resource_spans for ss in rs.scope_spans
            for s in ss.spans]


async def test_readme_example(tmp_path: Path) -> None:
    [block] = yaml_blocks(README)
    configs = load_example(block, tmp_path)
    processor, sink = build(configs["attributes"], "attributes", Signal.TRACES)
    source = {"http.request.header.authorization": "Bearer t", "user.email": "ann@example.com",
              "http.url": "https://shop/api/v2/orders", "http.response.status_code": "503",
              "server.address": "db-1", "internal.debug": "x", "internal.trace": "y"}
    await processor.consume_traces(traces("checkout", [("POST /pay", source), ("GET /health/live", source)]))
    await processor.consume_traces(traces("other", [("POST /pay", source)]))
    changed, health, other = spans(sink)
    assert attrs(changed) == {
        "user.email": hashlib.sha256(b"ann@example.com").hexdigest(), "http.url": "https://shop/api/v2/orders",
        "http.response.status_code": 503, "server.address": "db-1", "deployment.environment": "production",
        "api_version": "v2", "peer.service": "db-1"}
    assert attrs(health) == source  # excluded by span name
    assert attrs(other) == source  # not an included service


def config(data: dict[str, Any]) -> Any:
    result = decode(factory.create_default_config(), data)
    assert validate_tree(result) == []
    return result


ACTION_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"key": "a", "value": "new", "action": "insert"}, {"a": "old", "n": 7}),
    ({"key": "z", "value": 1.5, "action": "insert"}, {"a": "old", "n": 7, "z": 1.5}),
    ({"key": "a", "value": True, "action": "update"}, {"a": True, "n": 7}),
    ({"key": "z", "value": "x", "action": "update"}, {"a": "old", "n": 7}),
    ({"key": "z", "from_attribute": "n", "action": "upsert"}, {"a": "old", "n": 7, "z": 7}),
    ({"key": "z", "from_attribute": "absent", "action": "upsert"}, {"a": "old", "n": 7}),
    ({"key": "z", "from_context": "metadata.tenant", "action": "upsert"}, {"a": "old", "n": 7}),
    ({"key": "a", "action": "delete"}, {"n": 7}),
    ({"pattern": "^[an]$", "action": "delete"}, {}),
    ({"pattern": "^a$", "action": "hash"}, {"a": hashlib.sha256(b"old").hexdigest(), "n": 7}),
    ({"key": "n", "action": "hash"}, {"a": "old", "n": hashlib.sha256(b"7").hexdigest()}),
    ({"key": "a", "pattern": "^(?P<first>o)(?P<rest>.*)$", "action": "extract"},
     {"a": "old", "n": 7, "first": "o", "rest": "ld"}),
    ({"key": "n", "converted_type": "string", "action": "convert"}, {"a": "old", "n": "7"}),
    ({"key": "n", "converted_type": "double", "action": "convert"}, {"a": "old", "n": 7.0}),
    ({"key": "a", "converted_type": "int", "action": "convert"}, {"a": "old", "n": 7}),  # does not convert
]


@pytest.mark.parametrize(("action", "expected"), ACTION_CASES, ids=[str(c[0]) for c in ACTION_CASES])
async def test_action(action: dict[str, Any], expected: dict[str, Any]) -> None:
    sink = Sink()
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "attributes", Signal.TRACES), config({"actions": [action]}), sink)
    await processor.consume_traces(traces("svc", [("op", {"a": "old", "n": 7})]))
    assert attrs(spans(sink)[0]) == expected


async def test_logs_and_metrics_with_their_own_match_properties() -> None:
    cfg = config({"actions": [{"key": "seen", "value": True, "action": "insert"}],
                  "include": {"match_type": "regexp", "log_severity_texts": ["^ERR"], "metric_names": ["^http"],
                              "span_names": ["ignored for logs and metrics"],
                              "resources": [{"key": "env", "value": "^prod"}]}})
    sink = Sink()
    logs_processor = factory.create_logs(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "attributes", Signal.LOGS), cfg, sink)
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    set_any(rl.resource.attributes.add(key="env").value, "production")
    for text in ("ERROR", "INFO"):
        rl.scope_logs.add().log_records.add(severity_text=text)
    await logs_processor.consume_logs(logs)
    out = sink.batches[Signal.LOGS][0].resource_logs[0].scope_logs
    assert [attrs(s.log_records[0]) for s in out] == [{"seen": True}, {}]

    metrics_processor = factory.create_metrics(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "attributes", Signal.METRICS), cfg, sink)
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    set_any(rm.resource.attributes.add(key="env").value, "production")
    for name in ("http.requests", "cpu"):
        rm.scope_metrics.add().metrics.add(name=name).gauge.data_points.add(as_int=1)
    await metrics_processor.consume_metrics(metrics)
    out_metrics = sink.batches[Signal.METRICS][0].resource_metrics[0].scope_metrics
    assert [attrs(s.metrics[0].gauge.data_points[0]) for s in out_metrics] == [{"seen": True}, {}]


async def test_strict_attributes_libraries_and_kinds() -> None:
    cfg = config({"actions": [{"key": "seen", "value": 1, "action": "insert"}],
                  "include": {"match_type": "strict", "attributes": [{"key": "tier", "value": "gold"}, {"key": "id"}],
                              "libraries": [{"name": "lib"}], "span_kinds": ["SPAN_KIND_SERVER"]}})
    sink = Sink()
    processor = factory.create_traces(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "attributes", Signal.TRACES), cfg, sink)
    await processor.consume_traces(traces("s", [("a", {"tier": "gold", "id": 1}), ("b", {"tier": "gold"}),
                                                ("c", {"tier": "silver", "id": 1})]))
    await processor.consume_traces(traces("s", [("d", {"tier": "gold", "id": 1})], kind=3))
    assert [attrs(s).get("seen") for s in spans(sink)] == [1, None, None, None]


@pytest.mark.parametrize(("data", "message"), [
    ({"actions": []}, "actions: at least one action is required"),
    ({"actions": [{"key": "a", "action": "move"}]}, "actions::0::action: must be one of insert"),
    ({"actions": [{"key": "a", "action": "insert"}]}, "insert needs exactly one of value, from_attribute"),
    ({"actions": [{"key": "a", "value": 1, "from_attribute": "b", "action": "upsert"}]},
     "got value, from_attribute"),
    ({"actions": [{"key": "a", "action": "extract", "pattern": "(x)"}]}, "extract needs named groups"),
    ({"actions": [{"key": "a", "action": "convert", "converted_type": "bool"}]}, "converted_type: must be one of"),
    ({"actions": [{"action": "delete"}]}, "actions::0::key: required (or pattern)"),
    ({"actions": [{"key": "a", "action": "delete"}], "include": {"match_type": "glob"}},
     "include::match_type: must be strict or regexp"),
    ({"actions": [{"key": "a", "action": "delete"}], "exclude": {"match_type": "regexp", "services": ["("]}},
     "exclude::services::0: invalid regular expression"),
])
def test_config_errors(data: dict[str, Any], message: str) -> None:
    errors = validate_tree(decode(factory.create_default_config(), data))
    assert any(message in e for e in errors), errors
