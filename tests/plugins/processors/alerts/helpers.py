"""Builders of metric batches and a processor wired to a controllable clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import Sink, any_value, settings_for
from plugins.processors.alerts.factory import create_default_config
from plugins.processors.alerts.processor import AlertsProcessor


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _attrs(labels: Mapping[str, Any] | None) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in (labels or {}).items()]


def gauge(name: str, points: Sequence[tuple[Mapping[str, Any], float]]) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = name
    for labels, value in points:
        p = metric.gauge.data_points.add()
        p.as_double = value
        p.attributes.extend(_attrs(labels))
    return req


def counter(name: str, points: Sequence[tuple[Mapping[str, Any], float]], delta: bool = False
            ) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = name
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = 1 if delta else 2
    for labels, value in points:
        p = metric.sum.data_points.add()
        p.as_int = int(value)
        p.attributes.extend(_attrs(labels))
    return req


def histogram(name: str, labels: Mapping[str, Any], bounds: Sequence[float], counts: Sequence[int],
              total: float = 0.0) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = name
    metric.histogram.aggregation_temporality = 2
    p = metric.histogram.data_points.add()
    p.explicit_bounds.extend(bounds)
    p.bucket_counts.extend(counts)
    p.count = sum(counts)
    p.sum = total
    p.attributes.extend(_attrs(labels))
    return req


def make_processor(raw: Mapping[str, Any], clock: Clock | None = None) -> tuple[AlertsProcessor, Sink, Clock]:
    clock = clock or Clock()
    config = decode(create_default_config(), dict(raw))
    config.validate()
    sink = Sink()
    processor = AlertsProcessor(settings_for(Kind.PROCESSOR, "alerts", Signal.METRICS), config, sink, clock=clock)
    return processor, sink, clock


def states(processor: AlertsProcessor) -> dict[str, str]:
    return {f"{a.name}/{a.severity}/{a.labels.get('queue', a.labels.get('slo', ''))}": a.state.value
            for a in processor.book.alerts.values()}
