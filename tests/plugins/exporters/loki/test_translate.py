"""Labels, lines, timestamps, structured metadata and tenants: the lokiexporter rules of docs/protocols.md §2.6."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.testing import any_value
from plugins.exporters.loki.config import Config, LabelsConfig
from plugins.exporters.loki.labels import LEVELS, label_name, label_set_text
from plugins.exporters.loki.labels import Label as L
from plugins.exporters.loki.translate import Translator

T0 = 1_700_000_000_000_000_000
TRACE, SPAN = bytes(range(16)), bytes(range(8))
RESOURCE = {"service.name": "checkout", "service.namespace": "shop", "service.instance.id": "pod-7"}


def record(body: Any = "hello", attributes: dict[str, Any] | None = None, **fields: Any) -> LogRecord:
    out = LogRecord(time_unix_nano=fields.pop("time_unix_nano", T0), severity_number=fields.pop("severity", 9),
                    **fields)
    if body is not None:
        out.body.CopyFrom(any_value(body))
    out.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in (attributes or {}).items())
    return out


def request(*records: LogRecord, resource: dict[str, Any] | None = None,
            scope: tuple[str, str] = ("app", "1.0")) -> ExportLogsServiceRequest:
    out = ExportLogsServiceRequest()
    rl = out.resource_logs.add()
    rl.resource.attributes.extend(KeyValue(key=k, value=any_value(v))
                                  for k, v in (RESOURCE if resource is None else resource).items())
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = scope
    sl.log_records.extend(records)
    return out


def streams(batch: ExportLogsServiceRequest, **config: Any) -> dict[str, dict[str, list[Any]]]:
    """{tenant: {label-set text: [(timestamp, line, metadata dict)]}}"""
    tenants, rejected, _ = Translator(Config(endpoint="http://loki", **config)).translate(batch)
    assert rejected == 0
    return {tenant: {text: [(ts, line, dict(md)) for ts, line, md in entries]
                     for text, (_, entries) in by_labels.items()} for tenant, by_labels in tenants.items()}


def only(batch: ExportLogsServiceRequest, **config: Any) -> tuple[str, list[Any]]:
    ((tenant, by_labels),) = streams(batch, **config).items()
    assert tenant == config.get("tenant_id", "")
    ((labels, entries),) = by_labels.items()
    return labels, entries


def test_default_labels_and_json_line() -> None:
    labels, [(ts, line, metadata)] = only(request(record(
        "card declined", {"http.route": "/pay"}, severity_text="WARN", severity=13, trace_id=TRACE, span_id=SPAN,
        flags=1)))
    assert labels == '{exporter="OTLP", instance="pod-7", job="shop/checkout", level="WARN"}'
    assert ts == T0
    assert json.loads(line) == {
        "body": "card declined", "traceid": TRACE.hex(), "spanid": SPAN.hex(), "severity": "WARN", "flags": 1,
        "attributes": {"http.route": "/pay"},
        "resources": {"service.name": "checkout", "service.namespace": "shop", "service.instance.id": "pod-7"},
        "instrumentation_scope": {"name": "app", "version": "1.0"}}
    assert metadata == {"trace_id": TRACE.hex(), "span_id": SPAN.hex()}


def test_job_without_namespace_and_no_instance() -> None:
    labels, _ = only(request(record(), resource={"service.name": "checkout"}))
    assert labels == '{exporter="OTLP", job="checkout", level="INFO"}'


@pytest.mark.parametrize(("severity", "level"), [(0, None), (1, "TRACE"), (4, "TRACE4"), (5, "DEBUG"),
                                                 (10, "INFO2"), (13, "WARN"), (16, "WARN4"), (17, "ERROR"),
                                                 (21, "FATAL"), (24, "FATAL4"), (99, None)])
def test_level_from_severity_number(severity: int, level: str | None) -> None:
    labels, _ = only(request(record(severity=severity), resource={}))
    assert labels == ('{exporter="OTLP"}' if level is None else f'{{exporter="OTLP", level="{level}"}}')
    assert len(LEVELS) == 25


def test_default_labels_can_be_turned_off_and_a_stream_keeps_one_label() -> None:
    labels, _ = only(request(record()), default_labels_enabled={"exporter": False, "level": False})
    assert labels == '{instance="pod-7", job="shop/checkout"}'
    off = {name: False for name in ("exporter", "job", "instance", "level")}
    labels, _ = only(request(record()), default_labels_enabled=off)
    assert labels == '{exporter="OTLP"}'  # Loki refuses a stream without labels


def test_configured_labels_are_promoted_and_leave_the_line() -> None:
    batch = request(record(attributes={"http.route": "/pay", "user": "u1"}),
                    resource={**RESOURCE, "k8s.namespace.name": "prod", "deployment.environment": "eu"})
    labels, [(_, line, _)] = only(batch, default_labels_enabled={"exporter": False, "instance": False},
                                  labels=LabelsConfig(resource={"k8s.namespace.name": "namespace",
                                                                "deployment.environment": ""},
                                                      attributes={"http.route": "route"}))
    assert labels == ('{deployment_environment="eu", job="shop/checkout", level="INFO", namespace="prod", '
                      'route="/pay"}')
    document = json.loads(line)
    assert document["attributes"] == {"user": "u1"}
    assert "k8s.namespace.name" not in document["resources"] and "deployment.environment" not in document["resources"]


def test_hints_promote_labels_and_never_reach_the_line() -> None:
    batch = request(
        record(attributes={"loki.attribute.labels": "http.method, http.route", "http.method": "GET",
                           "http.route": "/a", "user": "u1"}),
        resource={"service.name": "api", "k8s.pod.name": "p-1", "cloud.region": "eu",
                  "loki.resource.labels": ["k8s.pod.name", "cloud.region"]})
    labels, [(_, line, _)] = only(batch, default_labels_enabled={"exporter": False})
    assert labels == ('{cloud_region="eu", http_method="GET", http_route="/a", job="api", k8s_pod_name="p-1", '
                      'level="INFO"}')
    document = json.loads(line)
    assert document["attributes"] == {"user": "u1"}
    assert document["resources"] == {"service.name": "api"}


def test_a_records_resource_labels_hint_applies_to_that_record_only() -> None:
    batch = request(record("a", {"loki.resource.labels": "host.name"}), record("b"),
                    resource={"service.name": "api", "host.name": "node-1"})
    (by_labels,) = streams(batch).values()
    assert sorted(by_labels) == ['{exporter="OTLP", host_name="node-1", job="api", level="INFO"}',
                                 '{exporter="OTLP", job="api", level="INFO"}']
    lines = {labels: json.loads(entries[0][1]) for labels, entries in by_labels.items()}
    assert "host.name" not in lines['{exporter="OTLP", host_name="node-1", job="api", level="INFO"}']["resources"]
    assert lines['{exporter="OTLP", job="api", level="INFO"}']["resources"]["host.name"] == "node-1"


@pytest.mark.parametrize(("name", "label"), [("k8s.pod.name", "k8s_pod_name"), ("1st", "key_1st"),
                                             ("__meta", "key__meta"), ("a-b/c d", "a_b_c_d"), ("_x", "_x"),
                                             ("ok_Name9", "ok_Name9")])
def test_label_names_are_made_valid(name: str, label: str) -> None:
    assert label_name(name) == label


def test_label_values_are_escaped() -> None:
    assert label_set_text([L("b", 'say "hi"\\n'), L("a", "line\nbreak")]) == \
        '{a="line\\nbreak", b="say \\"hi\\"\\\\n"}'


def test_labels_over_the_cap_go_to_structured_metadata_and_leave_the_line() -> None:
    batch = request(record(attributes={"a": "1", "b": "2"}, trace_id=TRACE))
    labels, [(_, line, metadata)] = only(batch, max_labels=3, labels=LabelsConfig(attributes={"a": "", "b": ""}))
    assert labels == '{instance="pod-7", job="shop/checkout", level="INFO"}'
    assert metadata == {"trace_id": TRACE.hex(), "a": "1", "b": "2", "exporter": "OTLP"}
    assert "attributes" not in json.loads(line)


def test_labels_over_the_cap_can_stay_in_the_line_instead() -> None:
    batch = request(record(attributes={"a": "1", "b": "2"}))
    labels, [(_, line, metadata)] = only(batch, max_labels=4, label_overflow="line",
                                         labels=LabelsConfig(attributes={"a": "", "b": ""}))
    assert labels == '{a="1", instance="pod-7", job="shop/checkout", level="INFO"}'
    assert metadata == {}
    assert json.loads(line)["attributes"] == {"b": "2"}


def test_static_tenant_and_tenant_hints() -> None:
    assert list(streams(request(record()), tenant_id="fallback")) == ["fallback"]
    # A record's hint counts when the resource has none.
    batch = request(record("r1"), record("r2", {"loki.tenant": "team", "team": "red"}),
                    resource={"service.name": "api"})
    tenants = streams(batch, tenant_id="fallback")
    assert {t: [json.loads(e[1])["body"] for s in by_labels.values() for e in s]
            for t, by_labels in tenants.items()} == {"fallback": ["r1"], "red": ["r2"]}
    # The resource's hint comes first, and it may name an attribute of each record.
    batch = request(record("r1", {"team": "red"}), record("r2", {"loki.tenant": "x", "x": "y", "team": "blue"}),
                    resource={"service.name": "api", "loki.tenant": "team"})
    tenants = streams(batch, tenant_id="fallback")
    assert {t: [json.loads(e[1])["body"] for s in by_labels.values() for e in s]
            for t, by_labels in tenants.items()} == {"red": ["r1"], "blue": ["r2"]}
    batch = request(record("r1"), resource={"service.name": "api", "loki.tenant": "owner", "owner": "green"})
    assert list(streams(batch)) == ["green"]


def test_records_whose_tenant_hint_is_unusable_are_left_out_and_counted() -> None:
    batch = request(record("ok"), record("missing", {"loki.tenant": "nope"}),
                    record("invalid", {"loki.tenant": "t", "t": "a|b"}))
    tenants, rejected, reason = Translator(Config(endpoint="http://loki")).translate(batch)
    assert rejected == 2 and "loki.tenant" in reason
    assert [json.loads(e[1])["body"] for s in tenants[""].values() for e in s[1]] == ["ok"]


def test_formats_and_the_format_hint() -> None:
    rec = record({"msg": "paid", "amount": 12.5}, {"user": "u 1"}, trace_id=TRACE, severity_text="INFO")
    _, [(_, logfmt, _)] = only(request(rec), format="logfmt")
    assert logfmt == (f'msg=paid amount=12.5 traceID={TRACE.hex()} severity=INFO attribute_user="u 1" '
                      "resource_service.name=checkout resource_service.namespace=shop "
                      "resource_service.instance.id=pod-7 instrumentation_scope_name=app "
                      "instrumentation_scope_version=1.0")
    _, [(_, raw, _)] = only(request(rec), format="raw")
    assert json.loads(raw) == {"msg": "paid", "amount": 12.5}
    _, [(_, raw, _)] = only(request(record("plain text"), resource={**RESOURCE, "loki.format": "raw"}))
    assert raw == "plain text"
    _, [(_, logfmt, _)] = only(request(record("x y", {"loki.format": "logfmt"}), scope=("", "")))
    assert logfmt == ('msg="x y" resource_service.name=checkout resource_service.namespace=shop '
                      "resource_service.instance.id=pod-7")


@pytest.mark.parametrize(("body", "expected"), [("text", "text"), (42, 42), (True, True), (b"\x00\x01", "AAE="),
                                                ([1, "a"], [1, "a"]), ({"k": {"n": 1}}, {"k": {"n": 1}}),
                                                ("é" * 200, "é" * 200)])
def test_body_types_in_the_json_line(body: Any, expected: Any) -> None:
    _, [(_, line, _)] = only(request(record(body)))
    assert json.loads(line)["body"] == expected


def test_timestamps_fall_back_to_observed_then_now_and_entries_are_sorted() -> None:
    before = time.time_ns()
    batch = request(record("late", time_unix_nano=T0 + 5), record("observed", time_unix_nano=0,
                                                                   observed_time_unix_nano=T0 + 1),
                    record("early", time_unix_nano=T0), record("none", time_unix_nano=0))
    _, entries = only(batch, format="raw")
    assert [line for _, line, _ in entries] == ["early", "observed", "late", "none"]
    assert [ts for ts, _, _ in entries][:3] == [T0, T0 + 1, T0 + 5]
    assert before <= entries[3][0] <= time.time_ns()


def test_structured_metadata_can_be_turned_off() -> None:
    _, [(_, line, metadata)] = only(request(record(trace_id=TRACE, span_id=SPAN)), structured_metadata=False,
                                    max_labels=1)
    assert metadata == {}
    assert json.loads(line)["traceid"] == TRACE.hex()


def test_the_event_name_is_in_the_line_and_in_structured_metadata() -> None:
    """Redaction may replace every body by its length: the event still tells records apart."""
    batch = request(record("<42 chars>", event_name="contact.queue.enter", trace_id=TRACE, span_id=SPAN),
                    record("<9 chars>", {"event.name": "agent.state.change"}))
    _, entries = only(batch)
    (_, first, first_md), (_, second, second_md) = entries
    assert json.loads(first)["event_name"] == "contact.queue.enter"
    assert first_md == {"trace_id": TRACE.hex(), "span_id": SPAN.hex(), "event_name": "contact.queue.enter"}
    assert json.loads(second)["event_name"] == "agent.state.change"
    assert second_md == {"event_name": "agent.state.change"}
    _, [(_, logfmt, _)] = only(request(record("<3 chars>", event_name="conversation.created")), format="logfmt")
    assert logfmt.startswith('msg="<3 chars>" event_name=conversation.created ')
    _, [(_, line, metadata)] = only(request(record("x", event_name="e")), structured_metadata=False)
    assert json.loads(line)["event_name"] == "e" and metadata == {}
    _, [(_, line, _)] = only(request(record("x")))
    assert "event_name" not in json.loads(line)
