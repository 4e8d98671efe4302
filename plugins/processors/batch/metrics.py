"""The Collector's batch processor metrics, created once per registry and shared by its batch processors."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BatchMetrics", "batch_metrics"]

# The Collector's buckets for otelcol_processor_batch_batch_send_size, so its dashboards read the same.
_SEND_SIZE_BUCKETS = (10, 25, 50, 75, 100, 250, 500, 750, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000,
                      9000, 10000, 20000, 30000, 50000, 100000)


@dataclass(frozen=True)
class BatchMetrics:
    send_size: Histogram
    size_trigger: Counter
    timeout_trigger: Counter
    send_failed: Counter


# Weak keys: a registry that is dropped (a stopped gateway, a finished test) takes its metrics with it, and a
# new registry can never be handed an old registry's metrics the way an id()-keyed cache could.
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, BatchMetrics] = weakref.WeakKeyDictionary()


def batch_metrics(registry: CollectorRegistry) -> BatchMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = BatchMetrics(
            send_size=Histogram(
                "otelcol_processor_batch_batch_send_size", "Number of units in the batch",
                ["processor"], registry=registry, buckets=_SEND_SIZE_BUCKETS),
            size_trigger=Counter(
                "otelcol_processor_batch_batch_size_trigger_send",
                "Number of times the batch was sent due to a size trigger", ["processor"], registry=registry),
            timeout_trigger=Counter(
                "otelcol_processor_batch_timeout_trigger_send",
                "Number of times the batch was sent due to a timeout trigger",
                ["processor"], registry=registry),
            send_failed=Counter(
                "otelgw_processor_batch_send_failed_items",
                "Items in batches the next component refused; they are dropped.",
                ["processor", "otel_signal"], registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
