"""The base-2 exponential histogram of the OTLP data model, for span durations (values >= 0).

It starts at the finest scale (20) and halves its resolution whenever the buckets in use would span more than
``max_size`` indexes, as the SDKs and the Collector do. Counts live in a dict keyed by bucket index, so a histogram
of a few distinct durations costs a few entries, not ``max_size``.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import reduce
from operator import add

from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

__all__ = ["MAX_SCALE", "ExponentialHistogram", "add_in_order", "count_sorted"]

if sys.version_info < (3, 12):
    def add_in_order(values: list[float], start: float) -> float:
        """``start`` plus every value, one addition at a time from left to right, as ``total += value`` does:
        the same float, to the last bit. Before 3.12 ``sum`` adds floats into one double in exactly this order."""
        return sum(values, start)
else:
    def add_in_order(values: list[float], start: float) -> float:
        """As above; from 3.12 on ``sum`` compensates rounding errors (a different last bit), so add one by one."""
        return reduce(add, values, start)


def count_sorted(counts: list[int], bounds: Sequence[float], ordered: list[float]) -> None:
    """Add ``ordered`` (ascending) to explicit-bucket ``counts`` (one more than ``bounds``, upper bounds inclusive).

    Every value lands where ``bisect_left(bounds, value)`` says, as when counted one by one, for one search per
    bucket that holds values instead of one per value.
    """
    n = len(ordered)
    if not n:
        return
    below = 0  # values counted so far: those <= the bound before i
    for i in range(bisect_left(bounds, ordered[0]), len(bounds)):  # the buckets below the smallest value stay
        upto = bisect_right(ordered, bounds[i], below)
        counts[i] += upto - below
        below = upto
        if below == n:
            return
    counts[len(bounds)] += n - below

MAX_SCALE = 20
_MIN_SCALE = -10


def bucket_index(value: float, scale: int) -> int:
    """Index of the bucket (base**i, base**(i+1)] holding ``value`` > 0, base = 2**(2**-scale)."""
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= mantissa < 1
    exact_power = mantissa == 0.5  # a power of two sits on a bucket's upper boundary: it belongs below it
    if scale <= 0:
        return (exponent - 2 if exact_power else exponent - 1) >> -scale
    if exact_power:
        return ((exponent - 1) << scale) - 1
    return math.ceil(math.log(value) * (2 ** scale / math.log(2))) - 1


class ExponentialHistogram:
    __slots__ = ("count", "counts", "max", "max_size", "min", "scale", "sum", "zero_count")

    def __init__(self, max_size: int = 160) -> None:
        self.max_size = max_size
        self.scale = MAX_SCALE
        self.counts: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= 0:
            self.zero_count += 1
            return
        index = bucket_index(value, self.scale)
        counts = self.counts
        if index not in counts and counts:
            low, high = min(min(counts), index), max(max(counts), index)
            if high - low + 1 > self.max_size:
                change = 0
                while (high >> change) - (low >> change) + 1 > self.max_size and self.scale - change > _MIN_SCALE:
                    change += 1
                self._downscale(change)
                index = bucket_index(value, self.scale)
                counts = self.counts
        counts[index] = counts.get(index, 0) + 1

    def _downscale(self, change: int) -> None:
        merged: dict[int, int] = {}
        for index, n in self.counts.items():
            merged[index >> change] = merged.get(index >> change, 0) + n
        self.counts = merged
        self.scale -= change

    def reset(self) -> None:
        self.scale = MAX_SCALE
        self.counts = {}
        self.zero_count = self.count = 0
        self.sum = 0.0
        self.min, self.max = math.inf, -math.inf

    def fill(self, point: pb.ExponentialHistogramDataPoint) -> None:
        point.scale = self.scale
        point.count = self.count
        point.sum = self.sum
        point.zero_count = self.zero_count
        if self.count:
            point.min, point.max = self.min, self.max
        if self.counts:
            low, high = min(self.counts), max(self.counts)
            point.positive.offset = low
            point.positive.bucket_counts.extend(self.counts.get(i, 0) for i in range(low, high + 1))
