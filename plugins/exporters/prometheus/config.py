from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway import ConfigError, Duration, HTTPServerConfig

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NAMESPACE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True)
class ResourceToTelemetry:
    #: true copies every resource attribute onto every series as a label.
    enabled: bool = False


@dataclass(frozen=True)
class Config(HTTPServerConfig):
    """The shared HTTP server block of /metrics (``gateway.confighttp``: endpoint, tls, auth, cors,
    response_headers, max_request_body_size, include_metadata), as the Collector's, with the exporter's keys."""

    #: host:port to serve /metrics on.
    endpoint: str = "localhost:8889"
    #: Labels added to every series that does not already have them.
    const_labels: dict[str, str] = field(default_factory=dict)
    #: Prefix of every metric name (joined with _).
    namespace: str = ""
    #: Write each sample's own timestamp into the exposition (default: none, the scrape time is used).
    send_timestamps: bool = False
    #: A series not updated for this long disappears from /metrics (checked on a timer and on every scrape).
    metric_expiration: Duration = 300.0
    #: Resource attributes as labels on every series, instead of only on target_info.
    resource_to_telemetry_conversion: ResourceToTelemetry = field(default_factory=ResourceToTelemetry)
    #: Answer in OpenMetrics (with exemplars) when the scraper asks for it; false always serves text 0.0.4.
    enable_open_metrics: bool = True
    #: false leaves names without unit, _total and _ratio suffixes.
    add_metric_suffixes: bool = True
    #: Emit target_info (one series per resource with its non-identifying attributes).
    target_info: bool = True
    #: Most series held; points of new series beyond it are dropped and counted. 0 = no limit.
    max_series: int = 100_000

    def validate(self) -> None:
        errors = self.listen_errors()
        for name in self.const_labels:
            if not _LABEL.match(name) or name.startswith("__"):
                errors.append(f"const_labels::{name}: not a valid Prometheus label name")
        if self.namespace and not _NAMESPACE.match(self.namespace):
            errors.append(f"namespace: not a valid Prometheus metric name prefix: {self.namespace!r}")
        if self.metric_expiration <= 0:
            errors.append("metric_expiration: must be > 0")
        if self.max_series < 0:
            errors.append("max_series: must be >= 0 (0 = no limit)")
        if errors:
            raise ConfigError(errors)
