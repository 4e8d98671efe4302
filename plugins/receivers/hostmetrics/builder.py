"""Writes host metrics into OTLP: cumulative sums (monotonic or not) and gauges, with string attributes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

__all__ = ["Metrics", "Point"]

#: (value, attributes) of one data point.
Point = tuple[float, Mapping[str, str]]
_CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE


def _attributes(attrs: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()]


class Metrics:
    """Adds metrics to one ScopeMetrics, skipping those turned off in the scraper's ``metrics`` setting."""

    def __init__(self, scope: pb.ScopeMetrics, now_ns: int, start_ns: int, enabled: Mapping[str, bool]) -> None:
        self.scope = scope
        self.now_ns = now_ns
        self.start_ns = start_ns
        self.enabled = enabled

    def on(self, name: str, default: bool = True) -> bool:
        return self.enabled.get(name, default)

    def sum(self, name: str, unit: str, description: str, points: Iterable[Point], *, monotonic: bool,
            as_int: bool = True, start_ns: int | None = None, default: bool = True) -> None:
        if not self.on(name, default):
            return
        metric = self.scope.metrics.add(name=name, unit=unit, description=description)
        metric.sum.aggregation_temporality = _CUMULATIVE
        metric.sum.is_monotonic = monotonic
        start = self.start_ns if start_ns is None else start_ns
        for value, attrs in points:
            point = metric.sum.data_points.add(time_unix_nano=self.now_ns, start_time_unix_nano=start)
            if as_int:
                point.as_int = int(value)
            else:
                point.as_double = float(value)
            point.attributes.extend(_attributes(attrs))

    def gauge(self, name: str, unit: str, description: str, points: Iterable[Point], *, as_int: bool = False,
              default: bool = True) -> None:
        if not self.on(name, default):
            return
        metric = self.scope.metrics.add(name=name, unit=unit, description=description)
        for value, attrs in points:
            point = metric.gauge.data_points.add(time_unix_nano=self.now_ns)
            if as_int:
                point.as_int = int(value)
            else:
                point.as_double = float(value)
            point.attributes.extend(_attributes(attrs))
