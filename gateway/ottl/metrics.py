"""Counters of the OTTL processors, created once per registry and shared by their instances."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

__all__ = ["OttlMetrics", "ottl_metrics"]


@dataclass(frozen=True)
class OttlMetrics:
    errors: Counter
    dropped: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, OttlMetrics] = weakref.WeakKeyDictionary()


def ottl_metrics(registry: CollectorRegistry) -> OttlMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = OttlMetrics(
            errors=Counter("otelgw_processor_ottl_errors",
                           "Run-time errors of OTTL statements and conditions, per statement.",
                           ["processor", "otel_signal", "statement"], registry=registry),
            dropped=Counter("otelgw_processor_filter_dropped_items",
                            "Items (spans, span events, metrics, data points, log records) the filter processor "
                            "dropped, per condition that matched.",
                            ["processor", "otel_signal", "context", "condition"], registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
