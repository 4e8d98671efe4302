"""Samples the rules need, recorded from OTLP metric points as they pass, and window aggregations over them.

Only metrics some rule names are looked at (a dict lookup per metric); only their points' attributes are read.
Values are kept cumulative: delta sums and histograms are summed as they arrive, so ``increase`` and
``quantile`` read the same way whatever the sender's temporality. Time is the arrival time (the processor's
clock), which is what makes evaluation testable with a controlled clock.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .spec import Expr

__all__ = ["Hist", "Matcher", "Series", "Store", "histogram_quantile", "point_labels"]

#: A histogram sample: (count, sum, bucket counts) with the bucket bounds kept on the series.
Hist = tuple[float, float, tuple[float, ...]]
Sample = float | Hist
_DELTA = 1
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Matcher:
    """Label conditions: a plain value means equality (as text); or {eq, ne, regex, not_regex, one_of}."""

    def __init__(self, conditions: Mapping[str, Any]) -> None:
        self.checks: list[tuple[str, Any]] = []
        for label, cond in conditions.items():
            if isinstance(cond, Mapping):
                if "eq" in cond:
                    self.checks.append((label, ("eq", _text(cond["eq"]))))
                if "ne" in cond:
                    self.checks.append((label, ("ne", _text(cond["ne"]))))
                if "regex" in cond:
                    self.checks.append((label, ("regex", re.compile(str(cond["regex"])))))
                if "not_regex" in cond:
                    self.checks.append((label, ("not_regex", re.compile(str(cond["not_regex"])))))
                if "one_of" in cond:
                    self.checks.append((label, ("one_of", frozenset(_text(v) for v in cond["one_of"]))))
            else:
                self.checks.append((label, ("eq", _text(cond))))

    def __call__(self, labels: Mapping[str, str]) -> bool:
        for label, (kind, arg) in self.checks:
            value = labels.get(label, "")
            if kind == "eq" and value != arg:
                return False
            if kind == "ne" and value == arg:
                return False
            if kind == "regex" and arg.fullmatch(value) is None:
                return False
            if kind == "not_regex" and arg.fullmatch(value) is not None:
                return False
            if kind == "one_of" and value not in arg:
                return False
        return True


def _any_value(value: Any) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    return _text(getattr(value, kind)) if kind in ("string_value", "int_value", "double_value", "bool_value") \
        else str(getattr(value, kind))


def point_labels(point: Any) -> dict[str, str]:
    return {kv.key: _any_value(kv.value) for kv in point.attributes}


class Series:
    __slots__ = ("bounds", "labels", "running", "samples")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.samples: deque[tuple[float, Sample]] = deque()
        self.bounds: tuple[float, ...] = ()
        self.running: Sample | None = None  # delta temporality: the total so far


class Store:
    """Series of one expression (metric + matchers), kept for ``retention`` at ``resolution`` spacing."""

    def __init__(self, expr: Expr, retention: float, resolution: float = 0.0) -> None:
        self.expr = expr
        self.matcher = Matcher(expr.match)
        self.retention = retention
        self.resolution = resolution
        self.series: dict[tuple[tuple[str, str], ...], Series] = {}

    # -- recording -----------------------------------------------------------------------------------------------
    def record(self, metric: Any, now: float) -> None:
        data = metric.WhichOneof("data")
        if data in ("sum", "gauge"):
            container = getattr(metric, data)
            delta = data == "sum" and container.aggregation_temporality == _DELTA
            for point in container.data_points:
                labels = point_labels(point)
                if not self.matcher(labels):
                    continue
                if point.flags & _NO_RECORDED_VALUE:
                    self._end(labels)
                    continue
                which = point.WhichOneof("value")
                value = float(point.as_double if which == "as_double" else point.as_int)
                series = self._series(labels)
                if delta:
                    running = value + (series.running if isinstance(series.running, float) else 0.0)
                    series.running = value = running
                self._add(series, now, value)
        elif data == "histogram":
            delta = metric.histogram.aggregation_temporality == _DELTA
            for point in metric.histogram.data_points:
                labels = point_labels(point)
                if not self.matcher(labels):
                    continue
                if point.flags & _NO_RECORDED_VALUE:
                    self._end(labels)
                    continue
                series = self._series(labels)
                bounds = tuple(point.explicit_bounds)
                if bounds != series.bounds:
                    series.samples.clear()  # new bucket layout: earlier samples cannot be subtracted
                    series.bounds, series.running = bounds, None
                sample: Hist = (float(point.count), float(point.sum), tuple(float(c) for c in point.bucket_counts))
                if delta:
                    if isinstance(series.running, tuple):
                        prev = series.running
                        sample = (prev[0] + sample[0], prev[1] + sample[1],
                                  tuple(a + b for a, b in zip(prev[2], sample[2], strict=False)))
                    series.running = sample
                self._add(series, now, sample)

    def _end(self, labels: dict[str, str]) -> None:
        """A point with no recorded value says the series ended (a ratio whose window emptied): it no longer
        has a value, rather than reading as 0."""
        self.series.pop(tuple(sorted(labels.items())), None)

    def _series(self, labels: dict[str, str]) -> Series:
        key = tuple(sorted(labels.items()))
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(labels)
        return series

    def _add(self, series: Series, now: float, sample: Sample) -> None:
        samples = series.samples
        if len(samples) >= 2 and now - samples[-2][0] < self.resolution:
            samples[-1] = (now, sample)  # coarse store: keep the spacing, but always the newest value
        else:
            samples.append((now, sample))
        horizon = now - self.retention
        while len(samples) >= 2 and samples[1][0] <= horizon:
            samples.popleft()  # keep one sample at or before the horizon: the baseline of increase

    def expire(self, now: float) -> None:
        horizon = now - self.retention
        for key in [k for k, s in self.series.items() if not s.samples or s.samples[-1][0] < horizon]:
            del self.series[key]

    # -- reading -------------------------------------------------------------------------------------------------
    def values(self, series: Series, now: float, window: float) -> tuple[Sample | None, list[Sample], Sample | None]:
        """(baseline at or before the window start, samples inside the window, last sample)."""
        start = now - window
        baseline: Sample | None = None
        inside: list[Sample] = []
        for t, sample in series.samples:
            if t <= start:
                baseline = sample
            elif t <= now:
                inside.append(sample)
        return baseline, inside, (inside[-1] if inside else None)


def _project(sample: Sample, field: str) -> float:
    if isinstance(sample, tuple):
        return sample[1] if field == "sum" else sample[0]
    return sample


def increase(points: Iterable[float]) -> float | None:
    """Sum of rises between consecutive samples; a drop is a counter reset (the new value counts from 0)."""
    total, prev, n = 0.0, None, 0
    for value in points:
        n += 1
        if prev is not None:
            total += value - prev if value >= prev else value
        prev = value
    return total if n >= 2 else None


def bucket_increase(baseline: Hist | None, inside: list[Hist]) -> tuple[float, ...] | None:
    chain = ([baseline] if baseline is not None else []) + inside
    if len(chain) < 2:
        return None
    first, last = chain[0][2], chain[-1][2]
    if last[0:1] and chain[-1][0] < chain[0][0]:  # reset inside the window: count from the restart
        return last
    return tuple(b - a for a, b in zip(first, last, strict=False))


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: Iterable[float]) -> float | None:
    """Prometheus's histogram_quantile on OTLP per-bucket counts (len(bounds) + 1, the last is +Inf)."""
    counts = list(counts)
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if cumulative + count >= rank and count > 0:
            if i >= len(bounds):
                return bounds[-1] if bounds else None
            lower = bounds[i - 1] if i > 0 else min(0.0, bounds[0])
            return lower + (bounds[i] - lower) * (rank - cumulative) / count
        cumulative += count
    return bounds[-1] if bounds else None


def aggregate(store: Store, now: float, group_by: list[str] | None) -> dict[tuple[tuple[str, str], ...], float]:
    """The expression's value per group (group = the group_by labels; None: every label set on its own)."""
    expr = store.expr
    agg, window, field = expr.aggregation, expr.window, expr.field
    parts: dict[tuple[tuple[str, str], ...], list[Any]] = {}
    for series in store.series.values():
        baseline, inside, last = store.values(series, now, window)
        if last is None:
            continue
        partial: Any
        if agg == "quantile":
            if not isinstance(last, tuple):
                continue
            hist_inside = [s for s in inside if isinstance(s, tuple)]
            buckets = bucket_increase(baseline if isinstance(baseline, tuple) else None, hist_inside)
            if buckets is None:
                continue
            partial = (series.bounds, buckets)
        elif agg in ("rate", "increase"):
            chain = ([baseline] if baseline is not None else []) + inside
            rise = increase(_project(s, field) for s in chain)
            if rise is None:
                continue
            partial = rise / window if agg == "rate" else rise
        elif agg == "last":
            partial = _project(last, field)
        else:
            values = [_project(s, field) for s in inside]
            partial = {"avg": sum(values) / len(values), "min": min(values), "max": max(values),
                       "sum": sum(values)}[agg]
        if group_by is None:
            key = tuple(sorted(series.labels.items()))
        else:
            key = tuple((name, series.labels.get(name, "")) for name in group_by)
        parts.setdefault(key, []).append(partial)
    result: dict[tuple[tuple[str, str], ...], float] = {}
    for key, items in parts.items():
        if agg == "quantile":
            bounds = items[0][0]
            merged = [0.0] * (len(bounds) + 1)
            for item_bounds, buckets in items:
                if item_bounds == bounds:
                    for i, c in enumerate(buckets[:len(merged)]):
                        merged[i] += c
            value = histogram_quantile(expr.quantile, bounds, merged)
            if value is None:
                continue
            result[key] = value
        elif agg == "min":
            result[key] = min(items)
        elif agg == "max":
            result[key] = max(items)
        elif agg == "avg":
            result[key] = sum(items) / len(items)
        else:
            result[key] = sum(items)
    return result
