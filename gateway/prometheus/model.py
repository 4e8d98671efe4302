"""The translated form both Prometheus exporters share: one ``Point`` per OTLP data point, already named and
labelled the Prometheus way, which expands into the samples Prometheus stores (``_bucket``/``_sum``/``_count``...).
"""

from __future__ import annotations

import bisect
import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from gateway.prometheus.naming import format_float

__all__ = ["STALE_NAN", "Exemplar", "Labels", "MetricType", "Point", "Sample"]

Labels: TypeAlias = tuple[tuple[str, str], ...]

#: The "stale NaN" of Prometheus (bits 0x7ff0000000000002): marks the end of a series. Never used for data.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


class MetricType(enum.StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    INFO = "info"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Exemplar:
    value: float
    timestamp_ms: int | None
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample line: ``name{labels, extra} value``; ``extra`` is ``le`` or ``quantile`` when set."""

    name: str
    extra: tuple[str, str] | None
    value: float
    exemplar: Exemplar | None = None


@dataclass(slots=True)
class Point:
    """One OTLP data point translated: the family it belongs to, its labels (sorted, no ``__name__``) and value."""

    #: Full family name: counters end in ``_total``, histograms and summaries carry no suffix.
    name: str
    type: MetricType
    labels: Labels
    timestamp_ms: int
    help: str = ""
    #: Prometheus unit word (``milliseconds``), for the OpenMetrics ``# UNIT`` line.
    unit: str = ""
    #: Counter, gauge, info and unknown points.
    value: float = 0.0
    #: Histogram upper bounds, ascending, without +Inf.
    bounds: tuple[float, ...] = ()
    #: Histogram counts per bucket (not cumulative): ``len(bounds) + 1`` entries, the last one above every bound.
    bucket_counts: tuple[float, ...] = ()
    count: float = 0.0
    #: Histogram and summary sum; None when the OTLP point had none (then no ``_sum`` sample).
    sum: float | None = None
    quantiles: tuple[tuple[float, float], ...] = ()
    exemplars: tuple[Exemplar, ...] = ()
    #: The OTLP point had NO_RECORDED_VALUE: the series ended.
    stale: bool = False
    start_ns: int = 0
    time_ns: int = 0
    #: Identity of the series, computed once: (name, labels).
    key: tuple[str, Labels] = field(init=False)
    #: When a series store last took this point (monotonic seconds): kept on the point rather than beside it, so
    #: a stored series is one object for the cycle collector to visit, not two.
    updated: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        self.key = (self.name, self.labels)

    def samples(self) -> Iterator[Sample]:
        """The Prometheus samples of this point; a stale point gives the stale NaN for each of them."""
        stale = self.stale
        if self.type is MetricType.HISTOGRAM:
            yield from self._histogram_samples(stale)
        elif self.type is MetricType.SUMMARY:
            for quantile, value in self.quantiles:
                yield Sample(self.name, ("quantile", format_float(quantile)), STALE_NAN if stale else value)
            if self.sum is not None:
                yield Sample(self.name + "_sum", None, STALE_NAN if stale else self.sum)
            yield Sample(self.name + "_count", None, STALE_NAN if stale else self.count)
        else:
            exemplar = self.exemplars[-1] if self.exemplars and self.type is MetricType.COUNTER else None
            yield Sample(self.name, None, STALE_NAN if stale else self.value, exemplar)

    def _histogram_samples(self, stale: bool) -> Iterator[Sample]:
        bucket = self.name + "_bucket"
        exemplars: dict[int, Exemplar] = {}
        if self.exemplars and not stale:
            for exemplar in self.exemplars:  # the latest exemplar of each bucket wins
                exemplars[bisect.bisect_left(self.bounds, exemplar.value)] = exemplar
        running = 0.0
        for i, bound in enumerate(self.bounds):
            running += self.bucket_counts[i] if i < len(self.bucket_counts) else 0
            yield Sample(bucket, ("le", format_float(bound)), STALE_NAN if stale else running, exemplars.get(i))
        yield Sample(bucket, ("le", "+Inf"), STALE_NAN if stale else self.count, exemplars.get(len(self.bounds)))
        if self.sum is not None:
            yield Sample(self.name + "_sum", None, STALE_NAN if stale else self.sum)
        yield Sample(self.name + "_count", None, STALE_NAN if stale else self.count)
