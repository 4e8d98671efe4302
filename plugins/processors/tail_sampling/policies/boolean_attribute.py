"""``boolean_attribute``: samples a trace with a boolean resource or span attribute ``key`` equal to ``value``."""

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
    #: The value that matches.
    value: bool = False
    #: Sample the traces where no attribute matches.
    invert_match: bool = False

    def validate(self) -> None:
        raise_if([] if self.key else ["key: required"])


class BooleanAttribute:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.key = config.key
        self.key_bytes = key_needle(config.key)
        self.value = config.value
        self.invert = config.invert_match

    def _matches(self, value: Any) -> bool:
        return value.WhichOneof("value") == "bool_value" and value.bool_value == self.value

    def evaluate(self, trace: Any) -> Decision:
        matched = any_attribute(trace, self.key, self.key_bytes, self._matches)
        return Decision.SAMPLED if matched != self.invert else Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        return prefiltered(self, traces, may_contain(traces, self.key_bytes))


KIND = PolicyKind("boolean_attribute", Config, lambda name, config, build, clock: BooleanAttribute(name, config))
