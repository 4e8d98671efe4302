from __future__ import annotations

import re
from dataclasses import dataclass, field

from yarl import URL

from gateway import ConfigError, HTTPClientConfig, QueueConfig, RetryConfig

DEFAULT_LABELS = ("exporter", "job", "instance", "level")
FORMATS = ("json", "logfmt", "raw")
# Loki's own limit on tenant ids (multi-tenancy.md): at most 150 bytes of these characters.
TENANT = re.compile(r"^[A-Za-z0-9!\-_.*'()]{1,150}$")


@dataclass(frozen=True)
class LabelsConfig:
    """Attributes promoted to stream labels, as {attribute: label name}; an empty name uses the attribute's
    name made valid (``k8s.pod.name`` → ``k8s_pod_name``). Promoted attributes leave the line."""

    #: Resource attributes to promote, e.g. {k8s.namespace.name: namespace, deployment.environment: ""}.
    resource: dict[str, str] = field(default_factory=dict)
    #: Log record attributes to promote, e.g. {http.route: route}. Each distinct value is a new stream:
    #: promote only attributes with few values.
    attributes: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        errors = []
        for section in ("resource", "attributes"):
            for attribute, label in getattr(self, section).items():
                if label and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", label):
                    errors.append(f"{section}::{attribute}: {label!r} is not a valid label name "
                                  "([a-zA-Z_][a-zA-Z0-9_]*)")
                elif label.startswith("__"):
                    errors.append(f"{section}::{attribute}: label names starting with __ are reserved by Loki")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config(HTTPClientConfig):
    """The shared HTTP client block (``gateway.confighttp``: endpoint, tls, headers, timeout, auth, proxy_url,
    buffer sizes) with Loki's labels, format and the exporter helper's queue and retry."""

    #: Loki's push URL, e.g. http://loki:3100/loki/api/v1/push (required).
    endpoint: str = ""
    #: none: the push body is compressed by its encoding already (snappy for protobuf, gzip for json).
    compression: str = "none"
    #: protobuf (snappy-compressed logproto.PushRequest, default) or json (gzip-compressed).
    encoding: str = "protobuf"
    #: The log line: json (body, ids, severity, attributes, resources, scope as one JSON object; default),
    #: logfmt, or raw (the body only). A loki.format resource or log attribute overrides it.
    format: str = "json"
    #: Tenant sent as X-Scope-OrgID; empty sends none (Loki with auth_enabled: false). A loki.tenant hint
    #: overrides it per record.
    tenant_id: str = ""
    #: Attributes promoted to stream labels, besides the loki.resource.labels / loki.attribute.labels hints.
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    #: Which default labels to add: exporter="OTLP", job (service.namespace/service.name), instance
    #: (service.instance.id), level (from severity_number). All on by default, e.g. {exporter: false}.
    default_labels_enabled: dict[str, bool] = field(default_factory=dict)
    #: Most labels per stream (Loki refuses more than max_label_names_per_series, 15 by default).
    max_labels: int = 15
    #: Where labels over max_labels go: structured_metadata (default) or line (their attributes stay in it).
    label_overflow: str = "structured_metadata"
    #: Send trace_id and span_id (and overflowing labels) as structured metadata, which Loki accepts by
    #: default since 3.0. false puts nothing there, for older Loki.
    structured_metadata: bool = True
    #: In-memory sending queue (default on: 10 consumers, 1000 requests).
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    #: Retry of 429 and 5xx with exponential backoff, at least the server's Retry-After (default on).
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def default_label(self, name: str) -> bool:
        return self.default_labels_enabled.get(name, True)

    def validate(self) -> None:
        errors = []
        if not self.endpoint:
            errors.append("endpoint: required, e.g. http://loki:3100/loki/api/v1/push")
        elif not _valid_url(self.endpoint):
            errors.append(f"endpoint: must be an http:// or https:// URL with a host, got {self.endpoint!r}")
        if self.encoding not in ("protobuf", "json"):
            errors.append(f"encoding: must be protobuf or json, got {self.encoding!r}")
        if self.format not in FORMATS:
            errors.append(f"format: must be json, logfmt or raw, got {self.format!r}")
        if self.tenant_id and not TENANT.match(self.tenant_id):
            errors.append(f"tenant_id: {self.tenant_id!r} is not a valid Loki tenant id (up to 150 of "
                          "A-Z a-z 0-9 ! - _ . * ' ( ))")
        errors.extend(f"default_labels_enabled::{name}: unknown label; valid ones are {', '.join(DEFAULT_LABELS)}"
                      for name in self.default_labels_enabled if name not in DEFAULT_LABELS)
        if self.max_labels < 1:
            errors.append(f"max_labels: must be >= 1, got {self.max_labels}")
        if self.label_overflow not in ("structured_metadata", "line"):
            errors.append(f"label_overflow: must be structured_metadata or line, got {self.label_overflow!r}")
        errors.extend(self.client_errors("snappy" if self.encoding == "protobuf" else "gzip"))
        if errors:
            raise ConfigError(errors)


def _valid_url(value: str) -> bool:
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)
