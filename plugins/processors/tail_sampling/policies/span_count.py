"""``span_count``: samples a trace with at least ``min_spans`` and at most ``max_spans`` spans (0 = no maximum)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway import raise_if

from ..trace import span_counts
from .base import Decision, PolicyKind

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Fewest spans, inclusive.
    min_spans: int = 0
    #: Most spans, inclusive; 0 = no maximum.
    max_spans: int = 0

    def validate(self) -> None:
        errors = []
        if self.min_spans < 0:
            errors.append("min_spans: must be >= 0")
        if self.max_spans < 0:
            errors.append("max_spans: must be >= 0")
        elif self.max_spans and self.max_spans < self.min_spans:
            errors.append(f"max_spans: must be 0 (no maximum) or >= min_spans ({self.min_spans}), "
                          f"got {self.max_spans}")
        raise_if(errors)


class SpanCount:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.low = config.min_spans
        self.high = config.max_spans

    def evaluate(self, trace: Any) -> Decision:
        count = trace.span_count
        if count >= self.low and (not self.high or count <= self.high):
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        sampled, not_sampled, low, high = Decision.SAMPLED, Decision.NOT_SAMPLED, self.low, self.high or float("inf")
        return [sampled if low <= count <= high else not_sampled for count in span_counts(traces)]


KIND = PolicyKind("span_count", Config, lambda name, config, build, clock: SpanCount(name, config))
