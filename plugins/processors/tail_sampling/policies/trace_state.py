"""``trace_state``: samples a trace when a span's W3C trace state has ``key`` with one of ``values``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from .base import Decision, PolicyKind

__all__ = ["KIND"]

# W3C trace-context: a list member is at most 256 characters (key, "=", value).
_MAX_MEMBER = 256


@dataclass(frozen=True)
class Config:
    #: Trace state key (required).
    key: str = ""
    #: Values that match (required).
    values: list[str] = field(default_factory=list)

    def validate(self) -> None:
        errors = []
        if not self.key:
            errors.append("key: required")
        if not self.values:
            errors.append("values: at least one value is required")
        raise_if(errors)


class TraceStatePolicy:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.key = config.key
        self.values = frozenset(v for v in config.values if len(config.key) + len(v) < _MAX_MEMBER)
        self.needle = f"{config.key}=".encode()

    def _matches(self, trace_state: str) -> bool:
        for member in trace_state.split(","):
            key, sep, value = member.strip().partition("=")
            if sep and key == self.key:
                return value in self.values
        return False

    def evaluate(self, trace: Any) -> Decision:
        if trace.spans_may_contain(self.needle) and any(
                span.trace_state and self._matches(span.trace_state) for span in trace.spans()):
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED


KIND = PolicyKind("trace_state", Config, lambda name, config, build, clock: TraceStatePolicy(name, config))
