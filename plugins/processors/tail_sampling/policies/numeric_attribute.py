"""``numeric_attribute``: samples a trace with an integer resource or span attribute ``key`` in range.

``min_value`` and ``max_value`` are inclusive; either may be left out (0 = no bound, as in the Collector).
Only integer attribute values count. ``invert_match`` samples the traces where no value is in range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway import raise_if

from ..trace import may_contain
from .attributes import any_attribute, key_needle, prefiltered
from .base import Decision, PolicyKind

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Attribute key (required).
    key: str = ""
    #: Smallest matching value, inclusive; 0 = no lower bound.
    min_value: int = 0
    #: Largest matching value, inclusive; 0 = no upper bound.
    max_value: int = 0
    #: Sample the traces where no value is in range.
    invert_match: bool = False

    def validate(self) -> None:
        errors = []
        if not self.key:
            errors.append("key: required")
        if self.min_value == 0 and self.max_value == 0:
            errors.append("min_value: set min_value, max_value or both")
        elif self.min_value and self.max_value and self.max_value < self.min_value:
            errors.append(f"max_value: must be >= min_value ({self.min_value}), got {self.max_value}")
        raise_if(errors)


class NumericAttribute:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.key = config.key
        self.key_bytes = key_needle(config.key)
        self.low = config.min_value if config.min_value else None
        self.high = config.max_value if config.max_value else None
        self.invert = config.invert_match

    def _matches(self, value: Any) -> bool:
        if value.WhichOneof("value") != "int_value":
            return False
        number = value.int_value
        return (self.low is None or number >= self.low) and (self.high is None or number <= self.high)

    def evaluate(self, trace: Any) -> Decision:
        matched = any_attribute(trace, self.key, self.key_bytes, self._matches)
        return Decision.SAMPLED if matched != self.invert else Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        return prefiltered(self, traces, may_contain(traces, self.key_bytes))


KIND = PolicyKind("numeric_attribute", Config, lambda name, config, build, clock: NumericAttribute(name, config))
