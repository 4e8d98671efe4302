"""Redaction processor metrics, created once per registry and shared by its instances (see batch/metrics.py)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

__all__ = ["RedactionMetrics", "redaction_metrics"]


@dataclass(frozen=True)
class RedactionMetrics:
    scanned: Counter
    walked: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, RedactionMetrics] = weakref.WeakKeyDictionary()


def redaction_metrics(registry: CollectorRegistry) -> RedactionMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = RedactionMetrics(
            scanned=Counter(
                "otelgw_processor_redaction_items_scanned",
                "Items (spans, data points, log records) whose serialized bytes the prefilter searched.",
                ["processor", "otel_signal"], registry=registry),
            walked=Counter(
                "otelgw_processor_redaction_items_walked",
                "Items whose attributes and fields were visited in Python to apply the rules.",
                ["processor", "otel_signal"], registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
