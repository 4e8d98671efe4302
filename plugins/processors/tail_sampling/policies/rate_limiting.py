"""``rate_limiting``: samples traces while the spans sampled in the current second stay below the limit.

The Collector's counting: a one-second window on the wall clock; a trace is sampled when the spans already
sampled this second plus its own stay below ``spans_per_second``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway import raise_if

from .base import Decision, PolicyKind

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Spans per second that may be sampled (required, > 0).
    spans_per_second: int = 0

    def validate(self) -> None:
        raise_if([] if self.spans_per_second > 0 else ["spans_per_second: must be > 0"])


class RateLimiting:
    def __init__(self, name: str, config: Config, clock: Callable[[], float]) -> None:
        self.name = name
        self.limit = config.spans_per_second
        self.clock = clock
        self.second = -1
        self.spent = 0

    def evaluate(self, trace: Any) -> Decision:
        second = int(self.clock())
        if second != self.second:
            self.second, self.spent = second, 0
        if self.spent + trace.span_count < self.limit:
            self.spent += trace.span_count
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED


KIND = PolicyKind("rate_limiting", Config, lambda name, config, build, clock: RateLimiting(name, config, clock))
