"""The series Prometheus adds to every scrape (``up``, ``scrape_*``), and the receiver's own counters."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry, Counter

from .targets import Target
from .translate import SCOPE_NAME, _resource

__all__ = ["ScrapeReport", "add_report", "metrics_for"]


@dataclass
class ScrapeReport:
    up: bool
    duration_s: float
    samples_scraped: int = 0
    samples_post_relabel: int = 0
    series_added: int = 0
    #: report_extra_scrape_metrics only: (timeout s, sample limit, body bytes).
    extra: tuple[float, int, int] | None = None


def add_report(request: ExportMetricsServiceRequest, target: Target, report: ScrapeReport, time_ns: int) -> None:
    """Append ``up`` and ``scrape_*`` gauges for ``target`` to ``request``, under the target's resource."""
    labels = dict(target.labels)
    key = (labels.pop("job", ""), labels.pop("instance", ""))
    scope = None
    for rm in request.resource_metrics:
        ids = {kv.key: kv.value.string_value for kv in rm.resource.attributes[:2]}
        if (ids.get("service.name"), ids.get("service.instance.id")) == key:
            scope = rm.scope_metrics[0]
            break
    if scope is None:
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(_resource(key, target.scheme, {}))
        scope = rm.scope_metrics.add()
        scope.scope.name = SCOPE_NAME
    attributes = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in sorted(labels.items())]
    values: list[tuple[str, str, float]] = [
        ("up", "The scraping was successful", 1.0 if report.up else 0.0),
        ("scrape_duration_seconds", "Duration of the scrape", report.duration_s),
        ("scrape_samples_scraped", "The number of samples the target exposed", report.samples_scraped),
        ("scrape_samples_post_metric_relabeling", "The number of samples remaining after metric relabeling was "
                                                  "applied", report.samples_post_relabel),
        ("scrape_series_added", "The approximate number of new series in this scrape", report.series_added),
    ]
    if report.extra is not None:
        timeout, sample_limit, body = report.extra
        values += [("scrape_timeout_seconds", "The configured scrape timeout for a target", timeout),
                   ("scrape_sample_limit", "The configured sample limit for a target", sample_limit),
                   ("scrape_body_size_bytes", "The uncompressed size of the last scrape response", body)]
    for name, description, value in values:
        metric = scope.metrics.add(name=name, description=description, unit="s" if name.endswith("seconds") else "")
        point = metric.gauge.data_points.add(as_double=float(value), time_unix_nano=time_ns)
        point.attributes.extend(attributes)


@dataclass
class ReceiverMetrics:
    scrapes: Counter
    failures: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ReceiverMetrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: CollectorRegistry) -> ReceiverMetrics:
    """One set of counters per registry, shared by every prometheus receiver in it."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = ReceiverMetrics(
            Counter("otelgw_receiver_scrapes", "Scrapes attempted by a prometheus receiver, per job.",
                    ["receiver", "job"], registry=registry),
            Counter("otelgw_receiver_scrape_failures", "Scrapes that failed (up = 0), per job and cause: timeout, "
                    "http_error, http_status, body_size_limit, parse_error, sample_limit, label_limit...",
                    ["receiver", "job", "cause"], registry=registry))
        _BY_REGISTRY[registry] = metrics
    return metrics
