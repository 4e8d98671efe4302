"""``service::telemetry`` in the shapes the Collector reads today: the gateway's own metrics, logs and resource.

    service:
      telemetry:
        resource: {service.name: edge-gateway}            # attributes of the gateway's own telemetry
        metrics:
          level: detailed                                 # none | basic | normal | detailed
          readers:
            - pull: {exporter: {prometheus: {host: 0.0.0.0, port: 8888}}}      # served at /metrics
            - periodic:                                                        # pushed over OTLP
                interval: 60000                                                # milliseconds
                exporter: {otlp: {protocol: http/protobuf, endpoint: https://metrics.example:4318}}
        logs: {level: info, encoding: json, output_paths: [stderr], sampling: {initial: 10, thereafter: 100}}
        traces: {level: none}                             # accepted; the gateway does not trace itself

The legacy ``metrics::address`` is a pull reader at that address; without either, the gateway serves its
metrics at localhost:8888, as the Collector does. Millisecond fields (``interval``, ``timeout``) are integers, as
in the OpenTelemetry configuration schema these blocks come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.configtypes import Duration
from gateway.errors import ConfigError

__all__ = ["LogsTelemetryConfig", "MetricReader", "MetricsTelemetryConfig", "OtlpPushConfig", "TelemetryConfig",
           "TracesTelemetryConfig"]

_LEVELS = ("none", "basic", "normal", "detailed")
_PROTOCOLS = ("grpc", "http/protobuf", "http/json")


@dataclass(frozen=True)
class PrometheusPullConfig:
    #: Interface to listen on; localhost unless written out, as in the Collector.
    host: str = "localhost"
    port: int = 8888
    # Accepted for the Collector's configs; the exposition keeps its names as they are.
    without_units: bool = False
    without_type_suffix: bool = False
    without_scope_info: bool = False
    with_resource_constant_labels: Any = None
    translation_strategy: Any = None

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: must be between 0 and 65535, got {self.port}")

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PullExporterConfig:
    prometheus: PrometheusPullConfig | None = None

    def validate(self) -> None:
        if self.prometheus is None:
            raise ConfigError("prometheus: a pull reader needs a prometheus exporter ({host, port})")


@dataclass(frozen=True)
class PullReaderConfig:
    exporter: PullExporterConfig = field(default_factory=PullExporterConfig)


@dataclass(frozen=True)
class OtlpPushConfig:
    #: grpc, http/protobuf or http/json.
    protocol: str = "http/protobuf"
    #: Where to send: http(s)://host:port for HTTP (``/v1/metrics`` is added unless a path is given), host:port
    #: or http(s)://host:port for gRPC.
    endpoint: str = ""
    #: Header name to value; the schema's list of ``{name, value}`` is read too.
    headers: Any = None
    #: Milliseconds one export may take.
    timeout: int = 10000
    #: gzip or none.
    compression: str = "none"
    insecure: bool = False
    certificate: str = ""
    client_certificate: str = ""
    client_key: str = ""
    temporality_preference: str = "cumulative"
    default_histogram_aggregation: Any = None

    def validate(self) -> None:
        errors = []
        if self.protocol not in _PROTOCOLS:
            errors.append(f"protocol: must be one of {', '.join(_PROTOCOLS)}, got {self.protocol!r}")
        if not self.endpoint:
            errors.append("endpoint: required")
        if self.timeout <= 0:
            errors.append(f"timeout: must be > 0 milliseconds, got {self.timeout}")
        if self.compression not in ("gzip", "none", ""):
            errors.append(f"compression: must be gzip or none, got {self.compression!r}")
        if self.temporality_preference != "cumulative":
            errors.append(f"temporality_preference: the gateway's own metrics are cumulative only, got "
                          f"{self.temporality_preference!r}")
        try:
            self.header_map()
        except ValueError as exc:
            errors.append(f"headers: {exc}")
        if errors:
            raise ConfigError(errors)

    def header_map(self) -> dict[str, str]:
        if self.headers is None:
            return {}
        if isinstance(self.headers, dict):
            return {str(k): str(v) for k, v in self.headers.items()}
        if isinstance(self.headers, list) and all(isinstance(h, dict) and "name" in h for h in self.headers):
            return {str(h["name"]): str(h.get("value", "")) for h in self.headers}
        raise ValueError("expected a mapping of header names to values, or a list of {name, value}")


@dataclass(frozen=True)
class PushExporterConfig:
    otlp: OtlpPushConfig | None = None
    console: Any = None

    def validate(self) -> None:
        if self.otlp is None:
            raise ConfigError("otlp: a periodic reader needs an otlp exporter (the gateway has no console "
                              "exporter for its metrics; scrape a pull reader instead)")


@dataclass(frozen=True)
class PeriodicReaderConfig:
    #: Milliseconds between exports.
    interval: int = 60000
    #: Milliseconds one export may take.
    timeout: int = 30000
    exporter: PushExporterConfig = field(default_factory=PushExporterConfig)

    def validate(self) -> None:
        errors = [f"{key}: must be > 0 milliseconds, got {value}"
                  for key, value in (("interval", self.interval), ("timeout", self.timeout)) if value <= 0]
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class MetricReader:
    pull: PullReaderConfig | None = None
    periodic: PeriodicReaderConfig | None = None

    def validate(self) -> None:
        if (self.pull is None) == (self.periodic is None):
            raise ConfigError("pull: a reader is either pull or periodic; give exactly one of them")


@dataclass(frozen=True)
class MetricsTelemetryConfig:
    #: host:port of the Prometheus endpoint for the gateway's own metrics (the Collector's older form of a pull
    #: reader); empty disables it. Default localhost:8888, as the Collector: a scraper on another host needs
    #: 0.0.0.0:8888 written out. Ignored when ``readers`` are given.
    address: str | None = None
    #: none | basic | normal | detailed, as in the Collector. ``none`` disables self-metrics.
    level: str = "basic"
    readers: list[MetricReader] = field(default_factory=list)
    views: Any = None

    def validate(self) -> None:
        if self.level not in _LEVELS:
            raise ConfigError(f"level: must be one of {', '.join(_LEVELS)}, got {self.level!r}")

    @property
    def pull_addresses(self) -> list[str]:
        """Where the gateway serves its metrics for Prometheus to scrape."""
        if self.level == "none":
            return []
        if self.readers:
            return [r.pull.exporter.prometheus.address for r in self.readers
                    if r.pull is not None and r.pull.exporter.prometheus is not None]
        address = "localhost:8888" if self.address is None else self.address
        return [address] if address else []

    @property
    def periodic(self) -> list[PeriodicReaderConfig]:
        if self.level == "none":
            return []
        return [r.periodic for r in self.readers if r.periodic is not None and r.periodic.exporter.otlp]


@dataclass(frozen=True)
class LogSamplingConfig:
    enabled: bool = True
    #: Per tick, the first ``initial`` records of one level and message are logged, then every ``thereafter``-th.
    tick: Duration = 1.0
    initial: int = 10
    thereafter: int = 100

    def validate(self) -> None:
        errors = [f"{key}: must be >= {low}, got {value}"
                  for key, value, low in (("initial", self.initial, 0), ("thereafter", self.thereafter, 0))
                  if value < low]
        if self.tick <= 0:
            errors.append("tick: must be > 0")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class LogsTelemetryConfig:
    #: debug | info | warn | error.
    level: str = "info"
    #: json | console.
    encoding: str = "json"
    #: Where log lines go: stderr, stdout or file paths (appended to).
    output_paths: list[str] = field(default_factory=lambda: ["stderr"])
    #: Where the logger's own failures go (a file it cannot write): stderr, stdout or file paths.
    error_output_paths: list[str] = field(default_factory=lambda: ["stderr"])
    #: Off unless given, as the Collector's default is for its own logs.
    sampling: LogSamplingConfig | None = None
    #: Fields added to every log line.
    initial_fields: dict[str, Any] = field(default_factory=dict)
    # Accepted for the Collector's configs: the gateway's log lines always name their logger, never a stack.
    development: bool = False
    disable_caller: bool = False
    disable_stacktrace: bool = False
    #: OTLP export of the gateway's own logs: accepted, and a warning says they are not exported.
    processors: list[Any] = field(default_factory=list)

    def validate(self) -> None:
        errors = []
        if self.level.lower() not in ("debug", "info", "warn", "warning", "error", "dpanic", "panic", "fatal"):
            errors.append(f"level: must be one of debug, info, warn, error, got {self.level!r}")
        if self.encoding not in ("json", "console"):
            errors.append(f"encoding: must be json or console, got {self.encoding!r}")
        for key in ("output_paths", "error_output_paths"):
            if not getattr(self, key):
                errors.append(f"{key}: give at least one of stderr, stdout or a file path")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class TracesTelemetryConfig:
    # The gateway does not trace itself: these are accepted so Collector configs load, and a warning says so.
    level: str = "basic"
    propagators: list[str] = field(default_factory=list)
    processors: list[Any] = field(default_factory=list)

    def validate(self) -> None:
        if self.level not in _LEVELS:
            raise ConfigError(f"level: must be one of {', '.join(_LEVELS)}, got {self.level!r}")


@dataclass(frozen=True)
class TelemetryConfig:
    metrics: MetricsTelemetryConfig = field(default_factory=MetricsTelemetryConfig)
    logs: LogsTelemetryConfig = field(default_factory=LogsTelemetryConfig)
    traces: TracesTelemetryConfig = field(default_factory=TracesTelemetryConfig)
    #: Attributes of the gateway's own telemetry (``service.name`` ...); a null value removes a default one.
    resource: dict[str, str | None] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What is accepted but not done, one message each, with its key path."""
        found = []
        if self.metrics.readers and self.metrics.address:
            found.append("service::telemetry::metrics::address: ignored because readers are given (the Collector "
                         "reads address only without readers)")
        if self.logs.processors:
            found.append("service::telemetry::logs::processors: the gateway does not export its own logs over "
                         "OTLP; they go to output_paths only")
        if self.traces.processors:
            found.append("service::telemetry::traces: the gateway does not trace itself; this section is ignored")
        return found
