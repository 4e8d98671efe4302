"""``always_sample``: samples every trace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import Decision, PolicyKind

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    """No settings: ``always_sample`` samples every trace."""


class AlwaysSample:
    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, trace: Any) -> Decision:
        return Decision.SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        return [Decision.SAMPLED] * len(traces)


KIND = PolicyKind("always_sample", Config, lambda name, config, build, clock: AlwaysSample(name))
