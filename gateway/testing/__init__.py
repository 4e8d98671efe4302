"""Testing utilities for otelgw and for plugin authors: batch builders, in-memory sinks, component settings.

    from gateway.testing import Sink, make_traces, settings_for

    sink = Sink()
    processor = my_factory.create_traces(settings_for(Kind.PROCESSOR, "mine", Signal.TRACES), config, sink)
    await processor.consume_traces(make_traces(spans=10))
    assert sink.item_count(Signal.TRACES) == 10
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gateway._host.admin import AdminServer
from gateway._host.telemetry import Telemetry
from gateway.component import Batch, ComponentID, ComponentSettings, Factory, Kind, Signal, count_items
from gateway.configtypes import decode_and_validate
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["Sink", "any_value", "load_config", "make_host", "make_logs", "make_metrics", "make_traces",
           "settings_for"]


def make_host(telemetry: Telemetry | None = None, extensions: Mapping[str, Any] | None = None, *,
              admin: AdminServer | None = None) -> Host:
    """A host as ``otelgw run`` gives components in ``start(host)``, with ``extensions`` (id to a started
    extension object) listed as if in ``service::extensions``, and ``admin`` as its admin endpoint."""
    from gateway._host.running import RunningHost

    host = RunningHost(telemetry or Telemetry(), admin)
    for cid, extension in (extensions or {}).items():
        host.extensions[ComponentID.parse(cid)] = extension
    return host


def load_config(factory: Factory, mapping: Mapping[str, Any] | None = None) -> Any:
    """``mapping`` (a component's YAML block) decoded onto ``factory``'s default config and validated, as
    ``otelgw run`` does; raises ``ConfigError`` with every message, each with its key path inside the block."""
    config, errors = decode_and_validate(factory.create_default_config(), mapping)
    if errors:
        raise ConfigError(errors)
    return config


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue (str, bool, int, float, bytes, list, dict)."""
    if isinstance(value, AnyValue):
        return value
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, Mapping):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=str(k), value=any_value(v)) for k, v in value.items())
        return out
    return AnyValue(string_value=str(value))


def _attributes(attrs: Mapping[str, Any] | None) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in (attrs or {}).items()]


def make_traces(spans: int = 10, *, service: str = "test-service", spans_per_trace: int = 5,
                attributes: Mapping[str, Any] | None = None, resource: Mapping[str, Any] | None = None,
                start_ns: int = 1_700_000_000_000_000_000, duration_ns: int = 1_000_000,
                error_every: int = 0) -> ExportTraceServiceRequest:
    """One resource and scope with ``spans`` spans in traces of ``spans_per_trace`` (first span of each is root)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(_attributes({"service.name": service, **(resource or {})}))
    ss = rs.scope_spans.add()
    ss.scope.name = "gateway.testing"
    trace_id = b""
    root_id = b""
    for i in range(spans):
        span = ss.spans.add()
        if i % spans_per_trace == 0:
            trace_id = os.urandom(16)
            root_id = os.urandom(8)
            span.span_id = root_id
            span.kind = 2
        else:
            span.span_id = os.urandom(8)
            span.parent_span_id = root_id
            span.kind = 3
        span.trace_id = trace_id
        span.name = f"operation-{i % 7}"
        span.start_time_unix_nano = start_ns + i * 1000
        span.end_time_unix_nano = start_ns + i * 1000 + duration_ns
        span.attributes.extend(_attributes(attributes or {"http.route": "/api/orders/{id}", "index": i}))
        if error_every and i % error_every == 0:
            span.status.code = 2
            span.status.message = "failed"
    return request


def make_metrics(points: int = 10, *, service: str = "test-service", name: str = "requests",
                 attributes: Mapping[str, Any] | None = None) -> ExportMetricsServiceRequest:
    """A cumulative monotonic sum with ``points`` data points, each with a distinct ``index`` attribute."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(_attributes({"service.name": service}))
    sm = rm.scope_metrics.add()
    sm.scope.name = "gateway.testing"
    metric = sm.metrics.add()
    metric.name = name
    metric.unit = "1"
    metric.sum.aggregation_temporality = 2
    metric.sum.is_monotonic = True
    for i in range(points):
        point = metric.sum.data_points.add()
        point.as_int = i + 1
        point.start_time_unix_nano = 1_700_000_000_000_000_000
        point.time_unix_nano = 1_700_000_001_000_000_000
        point.attributes.extend(_attributes({**(attributes or {}), "index": i}))
    return request


def make_logs(records: int = 10, *, service: str = "test-service", body: Any = "hello",
              attributes: Mapping[str, Any] | None = None, severity_number: int = 9) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(_attributes({"service.name": service}))
    sl = rl.scope_logs.add()
    sl.scope.name = "gateway.testing"
    for i in range(records):
        record = sl.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + i
        record.severity_number = severity_number  # type: ignore[assignment]
        record.severity_text = "INFO"
        record.body.CopyFrom(any_value(body))
        record.attributes.extend(_attributes({**(attributes or {}), "index": i}))
    return request


def settings_for(kind: Kind, component_id: str, signal: Signal | None = None,
                 telemetry: Telemetry | None = None) -> ComponentSettings:
    """Settings for driving one component in isolation (fresh self-telemetry unless one is given)."""
    cid = ComponentID.parse(component_id)
    return ComponentSettings(cid, kind, (telemetry or Telemetry()).for_component(kind, cid, signal), signal)


class Sink:
    """An in-memory consumer of every signal; keeps each batch it receives, in order."""

    def __init__(self) -> None:
        self.batches: dict[Signal, list[Batch]] = {s: [] for s in Signal}
        self.started = False
        self.stopped = False

    async def start(self, host: Host) -> None:
        self.started = True

    async def shutdown(self) -> None:
        self.stopped = True

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.batches[Signal.TRACES].append(batch)

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None:
        self.batches[Signal.METRICS].append(batch)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        self.batches[Signal.LOGS].append(batch)

    def item_count(self, signal: Signal) -> int:
        return sum(count_items(signal, b) for b in self.batches[signal])

    def spans(self) -> list[Any]:
        return [s for b in self.batches[Signal.TRACES] for rs in b.resource_spans  # type: ignore[union-attr]
                for ss in rs.scope_spans for s in ss.spans]

    def clear(self) -> None:
        for batches in self.batches.values():
            batches.clear()
