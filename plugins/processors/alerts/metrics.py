"""The processor's self-metrics, created once per registry: alert states, SLO burn and budget, notifications."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["AlertMetrics", "alert_metrics"]


@dataclass(frozen=True)
class AlertMetrics:
    alerts: Gauge
    rule_value: Gauge
    slo_budget: Gauge
    slo_burn: Gauge
    notifications: Counter
    evaluations: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, AlertMetrics] = weakref.WeakKeyDictionary()


def alert_metrics(registry: CollectorRegistry) -> AlertMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = AlertMetrics(
            alerts=Gauge("otelgw_alerts", "Alerts by name, severity and state (pending, firing).",
                         ["processor", "alertname", "severity", "state"], registry=registry),
            rule_value=Gauge("otelgw_alerts_rule_groups", "Groups (series) each rule produced a value for.",
                             ["processor", "alertname"], registry=registry),
            slo_budget=Gauge("otelgw_alerts_slo_error_budget_remaining",
                             "Fraction of the SLO's error budget left over its period (1 = untouched, < 0 = spent).",
                             ["processor", "slo"], registry=registry),
            slo_burn=Gauge("otelgw_alerts_slo_burn_rate", "Error ratio over the window / error budget ratio.",
                           ["processor", "slo", "window"], registry=registry),
            notifications=Counter("otelgw_alerts_notifications", "Notifications by notifier and outcome "
                                  "(sent, failed after retries, dropped on a full queue).",
                                  ["processor", "notifier", "outcome"], registry=registry),
            evaluations=Counter("otelgw_alerts_evaluations", "Rule evaluation rounds.", ["processor"],
                                registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
