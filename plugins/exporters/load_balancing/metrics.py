"""The load balancer's own metrics (the Collector's otelcol_loadbalancer_*), created once per registry."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["LoadBalancerMetrics", "loadbalancer_metrics"]


@dataclass(frozen=True)
class LoadBalancerMetrics:
    num_backends: Gauge
    resolutions: Counter


# Weak keys, as in the batch processor: a dropped registry takes its metrics with it.
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, LoadBalancerMetrics] = weakref.WeakKeyDictionary()


def loadbalancer_metrics(registry: CollectorRegistry) -> LoadBalancerMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = LoadBalancerMetrics(
            num_backends=Gauge(
                "otelgw_loadbalancer_num_backends", "Backends the load balancer currently routes to.",
                ["exporter", "resolver"], registry=registry),
            resolutions=Counter(
                "otelgw_loadbalancer_num_resolutions",
                "Resolutions of the backends, by outcome (a failure or an empty answer keeps the last backends).",
                ["exporter", "resolver", "outcome"], registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
