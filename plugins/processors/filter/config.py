"""Config of the ``filter`` processor: the Collector's OTTL form (``traces: {span: [...]}`` and so on)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError
from gateway.ottl import CompiledCondition, conditions_list, error_mode_problem

#: Each signal's block and the contexts it takes, in the order they are applied.
CONTEXTS = {"traces": {"span": "span", "spanevent": "spanevent"},
            "metrics": {"metric": "metric", "datapoint": "datapoint"},
            "logs": {"log_record": "log"}}


@dataclass(frozen=True)
class Config:
    #: What a condition that fails on an item does: ignore (log, rate-limited; the item is kept), silent (kept,
    #: not logged) or propagate (refuse the whole batch with a retryable error).
    error_mode: str = "propagate"
    #: ``span`` and ``spanevent``: lists of conditions; a span (event) matching any of them is dropped.
    traces: dict[str, Any] = field(default_factory=dict)
    #: ``metric`` and ``datapoint``: lists of conditions.
    metrics: dict[str, Any] = field(default_factory=dict)
    #: ``log_record``: a list of conditions.
    logs: dict[str, Any] = field(default_factory=dict)

    def conditions(self, signal: str, errors: list[str] | None = None) -> list[tuple[str, list[CompiledCondition]]]:
        """[(context, compiled conditions)] of one signal, in application order."""
        collect: list[str] = [] if errors is None else errors
        block = getattr(self, signal)
        out = []
        if isinstance(block, Mapping):
            for key in sorted(set(block) - set(CONTEXTS[signal])):
                collect.append(f"{signal}::{key}: unknown key; valid keys are: {', '.join(CONTEXTS[signal])}")
            for key, context in CONTEXTS[signal].items():
                if key in block:
                    compiled = conditions_list(block[key], context, f"{signal}::{key}", collect)
                    if compiled:
                        out.append((context, compiled))
        if errors is None and collect:
            raise ConfigError(collect)
        return out

    def validate(self) -> None:
        errors: list[str] = []
        problem = error_mode_problem("error_mode", self.error_mode)
        if problem:
            errors.append(problem)
        for signal in CONTEXTS:
            self.conditions(signal, errors)
        if errors:
            raise ConfigError(errors)
