"""``latency``: samples a trace whose duration (earliest span start to latest span end) is in range.

With only ``threshold_ms``: duration >= threshold_ms. With ``upper_threshold_ms`` as well:
threshold_ms < duration <= upper_threshold_ms, as in the Collector. Durations are whole milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import raise_if

from .base import Decision, PolicyKind

__all__ = ["KIND"]


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


KIND = PolicyKind("latency", Config, lambda name, config, build, clock: Latency(name, config), needs_times=True)
