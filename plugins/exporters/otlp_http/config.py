from __future__ import annotations

from dataclasses import dataclass, field

from yarl import URL

from gateway import (
    ConfigError,
    HTTPClientConfig,
    QueueConfig,
    RetryConfig,
    Signal,
)

_URL_KEYS = ("endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint")


@dataclass(frozen=True)
class Config(HTTPClientConfig):
    """The shared HTTP client block (``gateway.confighttp``: endpoint, tls, headers, compression, timeout, auth,
    proxy_url, buffer sizes) with per-signal URLs, the encoding and the exporter helper's queue and retry."""

    #: Base URL of the OTLP/HTTP server, e.g. http://collector:4318; v1/traces, v1/metrics and v1/logs are
    #: appended. Required unless every exported signal has its own <signal>_endpoint.
    endpoint: str = ""
    #: Full URL for traces, used as is instead of endpoint + /v1/traces.
    traces_endpoint: str = ""
    #: Full URL for metrics, used as is instead of endpoint + /v1/metrics.
    metrics_endpoint: str = ""
    #: Full URL for logs, used as is instead of endpoint + /v1/logs.
    logs_endpoint: str = ""
    #: Body encoding: proto (application/x-protobuf, default) or json (OTLP/JSON).
    encoding: str = "proto"
    #: In-memory sending queue (default on: 10 consumers, 1000 requests).
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    #: Retry with exponential backoff (default on: 5s initial, 30s max interval, give up after 300s).
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def url(self, signal: Signal) -> str:
        """Where ``signal`` is sent; empty when neither its own URL nor ``endpoint`` is set."""
        own = getattr(self, f"{signal.value}_endpoint")
        if own or not self.endpoint:
            return own
        return f"{self.endpoint}{'' if self.endpoint.endswith('/') else '/'}v1/{signal.value}"

    def validate(self) -> None:
        errors = []
        if not any(getattr(self, key) for key in _URL_KEYS):
            errors.append("endpoint: required (or traces_endpoint, metrics_endpoint, logs_endpoint), "
                          "e.g. http://collector:4318")
        for key in _URL_KEYS:
            value = getattr(self, key)
            if value and not _valid_url(value):
                errors.append(f"{key}: must be an http:// or https:// URL with a host, got {value!r}")
        errors.extend(self.client_errors())
        if self.encoding not in ("proto", "json"):
            errors.append(f"encoding: must be proto or json, got {self.encoding!r}")
        if errors:
            raise ConfigError(errors)


def _valid_url(value: str) -> bool:
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)
