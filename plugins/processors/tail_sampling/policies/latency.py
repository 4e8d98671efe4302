"""``latency``: samples a trace whose duration (earliest span start to latest span end) is in range.

With only ``threshold_ms``: duration >= threshold_ms. With ``upper_threshold_ms`` as well:
threshold_ms < duration <= upper_threshold_ms, as in the Collector. Durations are whole milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway import raise_if

from ..trace import durations_ns
from .base import Decision, PolicyKind

__all__ = ["KIND"]

_MS = 1_000_000


@dataclass(frozen=True)
class Config:
    #: Lower bound in milliseconds.
    threshold_ms: int = 0
    #: Upper bound in milliseconds; 0 = none.
    upper_threshold_ms: int = 0

    def validate(self) -> None:
        errors = []
        if self.threshold_ms < 0:
            errors.append("threshold_ms: must be >= 0")
        if self.upper_threshold_ms < 0:
            errors.append("upper_threshold_ms: must be >= 0")
        elif self.upper_threshold_ms and self.upper_threshold_ms < self.threshold_ms:
            errors.append(f"upper_threshold_ms: must be 0 (no upper bound) or >= threshold_ms "
                          f"({self.threshold_ms}), got {self.upper_threshold_ms}")
        raise_if(errors)


class Latency:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.lower = config.threshold_ms
        self.upper = config.upper_threshold_ms

    def evaluate(self, trace: Any) -> Decision:
        duration_ms = trace.duration_ns() // 1_000_000
        matched = self.lower < duration_ms <= self.upper if self.upper else duration_ms >= self.lower
        return Decision.SAMPLED if matched else Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        # In nanoseconds: duration // 1 ms >= n exactly when duration >= n ms (durations are never negative).
        # (List comprehensions: about half the cost of mapping bound methods such as int.__le__.)
        sampled, not_sampled = Decision.SAMPLED, Decision.NOT_SAMPLED
        if self.upper:
            low, high = (self.lower + 1) * _MS, (self.upper + 1) * _MS
            return [sampled if low <= duration < high else not_sampled for duration in durations_ns(traces)]
        low = self.lower * _MS
        return [sampled if duration >= low else not_sampled for duration in durations_ns(traces)]


KIND = PolicyKind("latency", Config, lambda name, config, build, clock: Latency(name, config), needs_times=True)
