"""The gateway's own telemetry: Prometheus metrics per component and JSON structured logs.

Metric names follow the Collector's (``otelcol_receiver_accepted_spans_total`` and friends) so existing Collector
dashboards work; metrics the Collector has no name for start with ``otelgw_``. Each component gets a
``ComponentTelemetry`` with its counters pre-bound to its labels, so recording costs one method call.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway._host import gcpolicy
from gateway._host.redact import RedactingFilter
from gateway.component import ComponentID, Kind, Signal

__all__ = ["CONTENT_TYPE_LATEST", "INTENTIONAL_DROPS", "ComponentTelemetry", "JsonFormatter", "Telemetry",
           "configure_logging"]

_ITEMS = ("spans", "metric_points", "log_records")
#: Reasons of ``otelgw_component_dropped_items_total`` that are a component's purpose, not a loss: tail_sampling's
#: traces not sampled, a filter's matches.
INTENTIONAL_DROPS = frozenset({"not_sampled", "filtered"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and any ``extra`` fields given to the log call."""

    _RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _Sampler(logging.Filter):
    """The Collector's log sampling: per ``tick`` and per level and message, the first ``initial`` records pass,
    then every ``thereafter``-th (0: none)."""

    def __init__(self, tick: float, initial: int, thereafter: int) -> None:
        super().__init__()
        self.tick, self.initial, self.thereafter = tick, initial, thereafter
        self._window = 0
        self._counts: dict[tuple[int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        window = int(record.created // self.tick)
        if window != self._window:
            self._window, self._counts = window, {}
        key = (record.levelno, str(record.msg))
        seen = self._counts[key] = self._counts.get(key, 0) + 1
        if seen <= self.initial:
            return True
        return self.thereafter > 0 and (seen - self.initial) % self.thereafter == 0


class _Fields(logging.Filter):
    """``initial_fields``: the same fields on every record."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self.fields = fields

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _stream(path: str) -> Any:
    if path == "stderr":
        return sys.stderr
    if path == "stdout":
        return sys.stdout
    return open(path, "a", encoding="utf-8", buffering=1)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose own failures (a full disk) are one line on ``error_output_paths``, not a traceback."""

    def __init__(self, stream: Any, error_streams: list[Any]) -> None:
        super().__init__(stream)
        self.error_streams = error_streams

    def handleError(self, record: logging.LogRecord) -> None:
        failure = sys.exc_info()[1]
        for stream in self.error_streams:
            try:
                stream.write(f"otelgw: a log line could not be written: {type(failure).__name__}: {failure}\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # nowhere left to say it


def _open(key: str, path: str) -> Any:
    try:
        return _stream(path)
    except OSError as exc:
        raise OSError(f"service::telemetry::logs::{key}: cannot open {path!r}: {exc.strerror or exc}") from None


def configure_logging(level: str = "info", encoding: str = "json", *, output_paths: Sequence[str] = ("stderr",),
                      error_output_paths: Sequence[str] = ("stderr",), sampling: Any = None,
                      initial_fields: dict[str, Any] | None = None) -> None:
    """Log lines of the ``otelgw`` logger go to every one of ``output_paths`` (stderr, stdout or files), JSON or
    console-formatted, redacted, and sampled when ``sampling`` (``LogSamplingConfig``) is enabled; a line that
    cannot be written is reported on ``error_output_paths``. Raises OSError naming a file that cannot be opened."""
    formatter = JsonFormatter() if encoding == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s")
    error_streams = [_open("error_output_paths", path) for path in error_output_paths]
    handlers = []
    for path in output_paths:
        handler = _Handler(_open("output_paths", path), error_streams)
        handler.setFormatter(formatter)
        # On the handler, not the logger: a logger's filters do not see records propagated from its children.
        handler.addFilter(RedactingFilter())
        handlers.append(handler)
    root = logging.getLogger("otelgw")
    root.handlers[:] = handlers
    for handler in handlers:
        if initial_fields:
            handler.addFilter(_Fields(dict(initial_fields)))
        if sampling is not None and sampling.enabled:  # one per handler: each sees every record once
            handler.filters.insert(0, _Sampler(sampling.tick, sampling.initial, sampling.thereafter))
    root.propagate = False
    level = level.lower()
    root.setLevel({"warn": "WARNING", "dpanic": "ERROR", "panic": "CRITICAL", "fatal": "CRITICAL"}.get(
        level, level.upper()))


class _ComponentLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass
class Telemetry:
    """Owns the registry and the metric families shared by all components."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.receiver_accepted = {
            i: Counter(f"otelcol_receiver_accepted_{i}", f"{i} successfully pushed into the pipeline.",
                       ["receiver", "transport"], registry=r) for i in _ITEMS}
        self.receiver_refused = {
            i: Counter(f"otelcol_receiver_refused_{i}", f"{i} that could not be pushed into the pipeline.",
                       ["receiver", "transport"], registry=r) for i in _ITEMS}
        self.receiver_bad_requests = Counter(
            "otelgw_receiver_bad_requests", "Requests rejected before decoding finished (bad body, size, type).",
            ["receiver", "transport", "reason"], registry=r)
        self.processor_incoming = Counter(
            "otelcol_processor_incoming_items", "Items passed to the processor.",
            ["processor", "otel_signal"], registry=r)
        self.processor_outgoing = Counter(
            "otelcol_processor_outgoing_items", "Items emitted by the processor.",
            ["processor", "otel_signal"], registry=r)
        self.exporter_sent = {
            i: Counter(f"otelcol_exporter_sent_{i}", f"{i} successfully sent to the destination.",
                       ["exporter"], registry=r) for i in _ITEMS}
        self.exporter_send_failed = {
            i: Counter(f"otelcol_exporter_send_failed_{i}", f"{i} that failed to be sent and were dropped.",
                       ["exporter"], registry=r) for i in _ITEMS}
        self.exporter_enqueue_failed = {
            i: Counter(f"otelcol_exporter_enqueue_failed_{i}", f"{i} refused because the sending queue was full.",
                       ["exporter"], registry=r) for i in _ITEMS}
        # As the Collector counts connectors, from outside (gateway._host.counted): what each one was handed and
        # what it handed on, by the signal of each side.
        self.connector_consumed = Counter(
            "otelcol_connector_consumed_items", "Items passed to the connector.",
            ["connector", "otel_signal"], registry=r)
        self.connector_produced = Counter(
            "otelcol_connector_produced_items", "Items the connector emitted.",
            ["connector", "otel_signal"], registry=r)
        self.component_dropped = Counter(
            "otelgw_component_dropped_items", "Items a component dropped, on purpose or by failure, by reason.",
            ["component", "otel_signal", "reason"], registry=r)
        self.exporter_queue_size = Gauge(
            "otelcol_exporter_queue_size", "Requests currently in the sending queue.",
            ["exporter", "data_type"], registry=r)
        self.exporter_queue_capacity = Gauge(
            "otelcol_exporter_queue_capacity", "Capacity of the sending queue, in requests.",
            ["exporter", "data_type"], registry=r)
        self.exporter_retries = Counter(
            "otelgw_exporter_retries", "Send attempts that failed with a retryable error and were retried.",
            ["exporter", "data_type"], registry=r)
        self.exporter_queue_worker_restarts = Counter(
            "otelgw_exporter_queue_worker_restarts", "Sending-queue workers that raised and were restarted.",
            ["exporter", "data_type"], registry=r)
        self.exporter_queue_recovery_dropped_records = Counter(
            "otelgw_exporter_queue_recovery_dropped_records",
            "Damaged records a persistent queue skipped when it recovered at start.",
            ["exporter", "data_type"], registry=r)
        self.exporter_queue_recovery_dropped_bytes = Counter(
            "otelgw_exporter_queue_recovery_dropped_bytes",
            "Bytes of the damaged records a persistent queue skipped when it recovered at start.",
            ["exporter", "data_type"], registry=r)
        self.exporter_send_latency = Histogram(
            "otelgw_exporter_send_duration_seconds", "Duration of one send attempt.",
            ["exporter", "data_type"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        Gauge("otelgw_gc_frozen_objects", "Objects the garbage collector no longer visits (gateway._host.gcpolicy).",
              registry=r).set_function(gcpolicy.frozen_objects)

    def for_component(self, kind: Kind, cid: ComponentID, signal: Signal | None = None) -> ComponentTelemetry:
        return ComponentTelemetry(self, kind, cid, signal)

    def dropped_items(self) -> float:
        """Every item any component has lost so far: the sum of ``otelgw_component_dropped_items_total`` except
        the reasons in ``INTENTIONAL_DROPS`` (a sampler or filter doing its job loses nothing)."""
        return sum(sample.value for metric in self.component_dropped.collect() for sample in metric.samples
                   if sample.name.endswith("_total") and sample.labels["reason"] not in INTENTIONAL_DROPS)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ComponentTelemetry:
    """One component's logger and pre-labelled counters."""

    def __init__(self, telemetry: Telemetry, kind: Kind, cid: ComponentID, signal: Signal | None) -> None:
        self.root = telemetry
        self.registry = telemetry.registry
        self.kind = kind
        self.id = cid
        self.signal = signal
        extra: dict[str, Any] = {"kind": kind.value, "component": str(cid)}
        if signal is not None:
            extra["data_type"] = signal.value
        self.logger: logging.LoggerAdapter = _ComponentLogger(  # type: ignore[type-arg]
            logging.getLogger(f"otelgw.{kind.value}.{cid}"), extra)

    def receiver_counters(self, transport: str, signal: Signal) -> tuple[Any, Any]:
        """(accepted, refused) counter children for one transport and signal."""
        item = signal.item_name
        return (self.root.receiver_accepted[item].labels(str(self.id), transport),
                self.root.receiver_refused[item].labels(str(self.id), transport))

    def bad_request(self, transport: str, reason: str) -> None:
        self.root.receiver_bad_requests.labels(str(self.id), transport, reason).inc()

    def dropped(self, reason: str, signal: Signal | None = None) -> Any:
        """The ``otelgw_component_dropped_items_total`` child of this component for ``reason``: call ``.inc(n)``
        for every item dropped on purpose (filtered, sampled out) or by failure (a refused flush, an eviction)."""
        chosen = signal or self.signal
        return self.root.component_dropped.labels(str(self.id), chosen.value if chosen else "", reason)
