"""The component contract: signals, ids, factories, consumers and the lifecycle every component follows.

Data flows as OTLP protobuf request messages (``ExportTraceServiceRequest`` and its siblings) through plain
``await next.consume_traces(batch)`` calls. Once ``consume_*`` returns, the caller no longer touches the batch.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

if TYPE_CHECKING:
    from gateway._host.telemetry import ComponentTelemetry
    from gateway.host import Host

__all__ = [
    "Batch",
    "Component",
    "ComponentID",
    "ComponentSettings",
    "Consumer",
    "Draining",
    "Factory",
    "Kind",
    "LogsConsumer",
    "MetricsConsumer",
    "Signal",
    "Stability",
    "TracesConsumer",
    "consume",
    "count_items",
]

Batch: TypeAlias = ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest


class Signal(enum.StrEnum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"

    @property
    def request_type(self) -> type[Batch]:
        return _REQUEST_TYPES[self]

    @property
    def item_name(self) -> str:
        """What one item of this signal is called in counters: spans, metric_points, log_records."""
        return _ITEM_NAMES[self]


_REQUEST_TYPES: dict[Signal, type[Batch]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}
_ITEM_NAMES = {Signal.TRACES: "spans", Signal.METRICS: "metric_points", Signal.LOGS: "log_records"}


class Kind(enum.StrEnum):
    RECEIVER = "receiver"
    PROCESSOR = "processor"
    EXPORTER = "exporter"
    CONNECTOR = "connector"
    EXTENSION = "extension"

    @property
    def section(self) -> str:
        """The top-level YAML key that configures components of this kind."""
        return self.value + "s"


class Stability(enum.StrEnum):
    DEVELOPMENT = "development"
    ALPHA = "alpha"
    BETA = "beta"
    STABLE = "stable"
    DEPRECATED = "deprecated"


@dataclass(frozen=True, order=True)
class ComponentID:
    """``type`` or ``type/name``, as written in the YAML."""

    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        type_, _, name = str(text).strip().partition("/")
        if not type_ or (_ and not name):
            raise ValueError(f"invalid component id {text!r}: expected 'type' or 'type/name'")
        return cls(type_, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


@runtime_checkable
class Component(Protocol):
    """Lifecycle: ``start`` is awaited downstream-first, ``shutdown`` upstream-first and always, even unstarted."""

    async def start(self, host: Host) -> None: ...

    async def shutdown(self) -> None: ...


@runtime_checkable
class Draining(Protocol):
    """A component that holds items for a later send (``batch``) and can let go of them early.

    The graph calls ``begin_shutdown`` on every such component before it stops the receivers. Receivers wait for
    their requests in flight, and those wait for the held items to be handed on: sending them now lets the
    senders be answered at once instead of after a timer.
    """

    def begin_shutdown(self) -> None: ...


class TracesConsumer(Protocol):
    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None: ...


class MetricsConsumer(Protocol):
    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None: ...


class LogsConsumer(Protocol):
    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None: ...


Consumer: TypeAlias = TracesConsumer | MetricsConsumer | LogsConsumer


def consume(consumer: Any, signal: Signal, batch: Batch) -> Any:
    """Call the ``consume_<signal>`` method of ``consumer``; for code that is generic over signals."""
    return getattr(consumer, f"consume_{signal.value}")(batch)


def count_items(signal: Signal, batch: Batch) -> int:
    """Spans, metric data points or log records in a batch. Loops over envelopes only, never over items."""
    if signal is Signal.TRACES:
        return sum(len(ss.spans) for rs in batch.resource_spans for ss in rs.scope_spans)  # type: ignore[union-attr]
    if signal is Signal.LOGS:
        return sum(len(sl.log_records) for rl in batch.resource_logs for sl in rl.scope_logs)  # type: ignore[union-attr]
    total = 0
    for rm in batch.resource_metrics:  # type: ignore[union-attr]
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                data = metric.WhichOneof("data")
                if data is not None:
                    total += len(getattr(metric, data).data_points)
    return total


@dataclass(frozen=True)
class ComponentSettings:
    """What the host hands every create function besides the config."""

    id: ComponentID
    kind: Kind
    telemetry: ComponentTelemetry
    signal: Signal | None = None  # None for extensions; the input signal for connectors


CreateFn: TypeAlias = Callable[..., Any]


@dataclass(frozen=True)
class Factory:
    """Plain data describing one component type; returned by a plugin's ``otelgw_component_factories`` hook.

    Receivers: ``create_<signal>(settings, config, next_consumer)``.
    Processors: ``create_<signal>(settings, config, next_consumer)``.
    Exporters: ``create_<signal>(settings, config)``.
    Connectors: ``connectors[(in_signal, out_signal)](settings, config, next_consumer)``.
    Extensions: ``create_extension(settings, config)``.
    """

    type: str
    kind: Kind
    create_default_config: Callable[[], Any]
    create_traces: CreateFn | None = None
    create_metrics: CreateFn | None = None
    create_logs: CreateFn | None = None
    connectors: Mapping[tuple[Signal, Signal], CreateFn] = field(default_factory=dict)
    create_extension: CreateFn | None = None
    stability: Stability = Stability.DEVELOPMENT
    #: Other type names that select this factory, e.g. ``otlp`` for ``otlp_grpc``.
    aliases: tuple[str, ...] = ()
    #: True when the component changes batches in place; a fan-out then hands it a copy.
    mutates_data: bool = False

    def create_fn(self, signal: Signal) -> CreateFn | None:
        return {
            Signal.TRACES: self.create_traces,
            Signal.METRICS: self.create_metrics,
            Signal.LOGS: self.create_logs,
        }[signal]

    @property
    def signals(self) -> list[str]:
        """Supported signals as printed by ``otelgw components``."""
        if self.kind is Kind.CONNECTOR:
            return [f"{a.value}->{b.value}" for a, b in self.connectors]
        if self.kind is Kind.EXTENSION:
            return []
        return [s.value for s in Signal if self.create_fn(s) is not None]
