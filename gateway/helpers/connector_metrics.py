"""Self-metrics of the connectors that aggregate into metrics (span_metrics, kpi), once per registry."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ConnectorMetrics", "connector_metrics"]


@dataclass(frozen=True)
class ConnectorMetrics:
    series: Gauge
    overflow: Counter
    flush_failed: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ConnectorMetrics] = weakref.WeakKeyDictionary()


def connector_metrics(registry: CollectorRegistry) -> ConnectorMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = ConnectorMetrics(
            series=Gauge("otelgw_connector_series", "Series the connector holds in memory.",
                         ["connector"], registry=registry),
            overflow=Counter("otelgw_connector_overflow_items",
                             "Items counted into an otel.metric.overflow=true series: the cardinality limit was hit.",
                             ["connector"], registry=registry),
            flush_failed=Counter("otelgw_connector_flush_failed_metric_points",
                                 "Metric points the next consumer refused at a flush; they are dropped.",
                                 ["connector"], registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
