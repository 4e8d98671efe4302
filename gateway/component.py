"""The component contract: signals, ids, factories, consumers and the lifecycle every component follows.

Data flows as OTLP protobuf request messages (``ExportTraceServiceRequest`` and its siblings) through plain
``await next.consume_traces(batch)`` calls. Once ``consume_*`` returns, the caller no longer touches the batch.

A factory's create functions, per kind (``settings`` from the host, ``config`` the decoded config dataclass):

- receiver, processor, connector: ``create(settings, config, next_consumer) -> Component`` (``CreateReceiver``,
  ``CreateProcessor``, ``CreateConnector``), where ``next_consumer`` has the ``consume_<signal>`` method of the
  signal it is created for (``TracesConsumer``, ``MetricsConsumer``, ``LogsConsumer``; for a connector, its
  output signal);
- exporter, extension: ``create(settings, config) -> Component`` (``CreateExporter``, ``CreateExtension``).

Extensions offer services to other components, found with ``host.extension(id, Protocol)``: ``Authenticator``
(receivers check requests), ``ClientAuthenticator`` (exporters sign requests), ``Storage`` (directories for
write-ahead logs and checkpoints).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, cast, runtime_checkable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

if TYPE_CHECKING:
    from gateway._host.telemetry import ComponentTelemetry
    from gateway.host import Host
    from gateway.wirebytes import WireBatch

__all__ = [
    "Authenticator",
    "Batch",
    "BatchConsumer",
    "ClientAuthenticator",
    "Component",
    "ComponentID",
    "ComponentSettings",
    "Consumer",
    "CreateConnector",
    "CreateExporter",
    "CreateExtension",
    "CreateProcessor",
    "CreateReceiver",
    "Draining",
    "Factory",
    "Kind",
    "LogsConsumer",
    "MetricsConsumer",
    "Signal",
    "Stability",
    "Storage",
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
_MESSAGE_TYPES = frozenset(_REQUEST_TYPES.values())
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


@runtime_checkable
class TracesConsumer(Protocol):
    """What a traces pipeline hands batches to. Returning means accepted (the batch is no longer the caller's);
    raising ``RetryableError``/``PermanentError``/``OverloadedError`` refuses it."""

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None: ...


@runtime_checkable
class MetricsConsumer(Protocol):
    """What a metrics pipeline hands batches to (as ``TracesConsumer``)."""

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None: ...


@runtime_checkable
class LogsConsumer(Protocol):
    """What a logs pipeline hands batches to (as ``TracesConsumer``)."""

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None: ...


class BatchConsumer:
    """A base for components that treat every signal alike but are created for one (``signal``):
    ``consume_traces``, ``consume_metrics`` and ``consume_logs`` hand the batch to ``consume_batch``, and a batch
    of another signal than ``signal`` is a wiring bug, refused with ``TypeError``. Real methods rather than
    attributes set per instance, so readers and type checkers see what a component consumes."""

    #: The signal this component was created for (``settings.signal``); subclasses set it in ``__init__``.
    signal: Signal

    async def consume_batch(self, batch: Batch) -> None:
        raise NotImplementedError

    def _wrong_signal(self, signal: Signal) -> TypeError:
        return TypeError(f"{type(self).__name__} was created for {self.signal.value}, not {signal.value}")

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        if self.signal is not Signal.TRACES:
            raise self._wrong_signal(Signal.TRACES)
        await self.consume_batch(batch)

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None:
        if self.signal is not Signal.METRICS:
            raise self._wrong_signal(Signal.METRICS)
        await self.consume_batch(batch)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        if self.signal is not Signal.LOGS:
            raise self._wrong_signal(Signal.LOGS)
        await self.consume_batch(batch)


#: The next stage of a pipeline, for code that serves every signal (it has the method of the signal it was
#: created for; ``consume(next_consumer, signal, batch)`` calls it).
Consumer: TypeAlias = TracesConsumer | MetricsConsumer | LogsConsumer


@runtime_checkable
class Authenticator(Protocol):
    """A server authenticator extension (``basicauth``, ``bearertokenauth``): receivers ask it about every
    request before reading its body. ``headers`` are the request's headers or gRPC metadata, keys lower-case."""

    def authenticate(self, headers: Mapping[str, str]) -> bool: ...


@runtime_checkable
class ClientAuthenticator(Protocol):
    """A client authenticator extension (``bearertokenauth``, ``basicauth``, ``headers_setter``): clients add its
    headers (e.g. ``Authorization``) to every request; asked per request, so a rotated token applies at once."""

    def client_headers(self) -> dict[str, str]: ...


@runtime_checkable
class HeadersEditor(ClientAuthenticator, Protocol):
    """A client authenticator that edits the client's own headers rather than adding to them
    (``headers_setter``: its ``upsert``/``delete`` actions need to see what is already there)."""

    def apply_headers(self, existing: dict[str, str]) -> dict[str, str]: ...


@runtime_checkable
class Storage(Protocol):
    """A storage extension (``file_storage``): one directory per owner for write-ahead logs and checkpoints.

    ``queue_directory(owner)`` creates (if needed) and returns the owner's directory and whether writes there
    must be fsync'd before they are acknowledged. ``owner`` is unique per component and signal, e.g.
    ``exporter_otlp_traces``.
    """

    def queue_directory(self, owner: str) -> tuple[Path, bool]: ...


def consume(consumer: Any, signal: Signal, batch: Batch) -> Any:
    """Call the ``consume_<signal>`` method of ``consumer``; for code that is generic over signals."""
    return getattr(consumer, f"consume_{signal.value}")(batch)


def count_items(signal: Signal, batch: Batch | WireBatch) -> int:
    """Spans, metric data points or log records in a batch. Loops over envelopes only, never over items.

    A ``gateway.wirebytes.WireBatch`` (serialized requests an exporter's queue holds) knows its count."""
    if batch.__class__ not in _MESSAGE_TYPES:
        return cast("WireBatch", batch).items
    if signal is Signal.TRACES:
        return sum(len(ss.spans) for rs in batch.resource_spans for ss in rs.scope_spans)
    if signal is Signal.LOGS:
        return sum(len(sl.log_records) for rl in batch.resource_logs for sl in rl.scope_logs)
    total = 0
    for rm in batch.resource_metrics:
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


_Next = TypeVar("_Next")
#: ``create(settings, config, next_consumer)``; ``CreateReceiver[MetricsConsumer]`` for a metrics receiver.
CreateReceiver: TypeAlias = Callable[[ComponentSettings, Any, _Next], Component]
#: ``create(settings, config, next_consumer)``, as a receiver's.
CreateProcessor: TypeAlias = Callable[[ComponentSettings, Any, _Next], Component]
#: ``create(settings, config, next_consumer)``; ``next_consumer`` consumes the connector's output signal.
CreateConnector: TypeAlias = Callable[[ComponentSettings, Any, _Next], Component]
#: ``create(settings, config)``.
CreateExporter: TypeAlias = Callable[[ComponentSettings, Any], Component]
#: ``create(settings, config)``.
CreateExtension: TypeAlias = Callable[[ComponentSettings, Any], Component]
#: What ``Factory.create_traces`` (and ``_metrics``, ``_logs``) holds: the kind decides which.
CreateFn: TypeAlias = CreateReceiver[Any] | CreateExporter


@dataclass(frozen=True)
class Factory:
    """Plain data describing one component type; returned by a plugin's ``otelgw_component_factories`` hook.

    Receivers: ``create_<signal>(settings, config, next_consumer)`` (``CreateReceiver``).
    Processors: ``create_<signal>(settings, config, next_consumer)`` (``CreateProcessor``).
    Exporters: ``create_<signal>(settings, config)`` (``CreateExporter``).
    Connectors: ``connectors[(in_signal, out_signal)](settings, config, next_consumer)`` (``CreateConnector``).
    Extensions: ``create_extension(settings, config)`` (``CreateExtension``).
    ``create_default_config`` returns the config dataclass with its defaults; the YAML is decoded onto it.
    """

    type: str
    kind: Kind
    create_default_config: Callable[[], Any]
    create_traces: CreateFn | None = None
    create_metrics: CreateFn | None = None
    create_logs: CreateFn | None = None
    connectors: Mapping[tuple[Signal, Signal], CreateConnector[Any]] = field(default_factory=dict)
    create_extension: CreateExtension | None = None
    stability: Stability = Stability.DEVELOPMENT
    #: Other type names that select this factory, e.g. ``otlp`` for ``otlp_grpc``.
    aliases: tuple[str, ...] = ()
    #: True when the component changes batches in place; a fan-out then hands it a copy.
    mutates_data: bool = False
    #: Connectors: True when it hands on the very batch it was given (``forward``). It then needs a copy only
    #: when something in a pipeline it feeds may change batches in place, and the graph decides that; its own
    #: ``mutates_data`` is ignored.
    passes_batches_on: bool = False
    #: Connectors: True when its state must see the items of every worker of ``otelgw run --workers N`` (a KPI
    #: whose events arrive on connections other workers serve). Worker 0 then runs it for the whole gateway; every
    #: other worker neither starts it nor feeds it, but hands what reaches it to worker 0 and answers once worker
    #: 0 accepted. A connector may define ``owner_share(signal, batch)``, returning the part of a batch its state
    #: can use (or None for none of it), so the rest does not travel.
    single_owner: bool = False

    def create_fn(self, signal: Signal) -> Callable[..., Component] | None:
        """The create function of ``signal``; its arguments depend on the kind (see above)."""
        functions: dict[Signal, CreateFn | None] = {
            Signal.TRACES: self.create_traces,
            Signal.METRICS: self.create_metrics,
            Signal.LOGS: self.create_logs,
        }
        return functions[signal]

    @property
    def signals(self) -> list[str]:
        """Supported signals as printed by ``otelgw components``."""
        if self.kind is Kind.CONNECTOR:
            return [f"{a.value}->{b.value}" for a, b in self.connectors]
        if self.kind is Kind.EXTENSION:
            return []
        return [s.value for s in Signal if self.create_fn(s) is not None]
