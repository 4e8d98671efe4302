from __future__ import annotations

import re
from dataclasses import dataclass, field

from yarl import URL

from gateway import ConfigError, HTTPClientConfig, RetryConfig

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NAMESPACE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
#: Headers the remote-write spec reserves: a user cannot override them.
RESERVED_HEADERS = frozenset({"content-encoding", "content-type", "user-agent", "x-prometheus-remote-write-version"})


@dataclass(frozen=True)
class RemoteWriteQueue:
    #: false sends inline: the pipeline waits for each write.
    enabled: bool = True
    #: Batches the queue holds; when full, new ones are refused with a retryable overload error.
    queue_size: int = 10000
    #: Concurrent requests per batch. Series are sharded by their labels, so each series stays in time order.
    num_consumers: int = 5


@dataclass(frozen=True)
class Enabled:
    enabled: bool = False


@dataclass(frozen=True)
class TargetInfo:
    #: Send one target_info series per resource with its non-identifying attributes.
    enabled: bool = True


def _default_retry() -> RetryConfig:
    # The Collector's remote-write defaults: quick retries, given up after a minute.
    return RetryConfig(initial_interval=0.05, max_interval=0.2, max_elapsed_time=60.0)


@dataclass(frozen=True)
class Config(HTTPClientConfig):
    """The shared HTTP client block (``gateway.confighttp``: endpoint, tls, headers, timeout, auth, proxy_url,
    buffer sizes) with remote write's own settings. Extra headers (e.g. X-Scope-OrgID) may not override the
    four the spec reserves."""

    #: Remote-write URL, e.g. http://prometheus:9090/api/v1/write. Required.
    endpoint: str = ""
    #: none: a remote-write body is snappy-compressed by the protocol.
    compression: str = "none"
    #: Prefix of every metric name (joined with _).
    namespace: str = ""
    #: Labels added to every series that does not already have them.
    external_labels: dict[str, str] = field(default_factory=dict)
    #: false leaves names without unit, _total and _ratio suffixes.
    add_metric_suffixes: bool = True
    #: Resource attributes as labels on every series, instead of only on target_info.
    resource_to_telemetry_conversion: Enabled = field(default_factory=Enabled)
    #: target_info series.
    target_info: TargetInfo = field(default_factory=TargetInfo)
    #: Queue and per-batch concurrency.
    remote_write_queue: RemoteWriteQueue = field(default_factory=RemoteWriteQueue)
    #: Retries on 5xx and 429 (never on other 4xx). max_elapsed_time must be > 0: Prometheus answers 500 to
    #: some errors that no retry fixes, so retries need a cap.
    retry_on_failure: RetryConfig = field(default_factory=_default_retry)
    #: Largest uncompressed write request; a batch is split into several.
    max_batch_size_bytes: int = 3_000_000
    #: Send metric metadata (type, help, unit) with the series.
    send_metadata: bool = False

    def validate(self) -> None:
        errors = []
        if not self.endpoint:
            errors.append("endpoint: required, e.g. http://prometheus:9090/api/v1/write")
        else:
            try:
                url = URL(self.endpoint)
                valid = url.scheme in ("http", "https") and bool(url.host)
            except (ValueError, TypeError):
                valid = False
            if not valid:
                errors.append(f"endpoint: must be an http:// or https:// URL with a host, got {self.endpoint!r}")
        errors.extend(f"headers::{name}: reserved by the remote-write protocol; it cannot be set"
                      for name in self.headers if name.lower() in RESERVED_HEADERS)
        errors.extend(self.client_errors("snappy"))
        for name, value in self.external_labels.items():
            if not _LABEL.match(name) or name.startswith("__"):
                errors.append(f"external_labels::{name}: not a valid Prometheus label name")
            elif not value:
                errors.append(f"external_labels::{name}: must not be empty (remote write forbids empty values)")
        if self.namespace and not _NAMESPACE.match(self.namespace):
            errors.append(f"namespace: not a valid Prometheus metric name prefix: {self.namespace!r}")
        if self.remote_write_queue.queue_size < 1:
            errors.append("remote_write_queue::queue_size: must be >= 1")
        if self.remote_write_queue.num_consumers < 1:
            errors.append("remote_write_queue::num_consumers: must be >= 1")
        if self.retry_on_failure.enabled and self.retry_on_failure.max_elapsed_time <= 0:
            errors.append("retry_on_failure::max_elapsed_time: must be > 0 (retries need a cap)")
        if self.max_batch_size_bytes < 1024:
            errors.append("max_batch_size_bytes: must be >= 1024")
        if errors:
            raise ConfigError(errors)
