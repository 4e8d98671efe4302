"""Config of the ``transform`` processor: the Collector's ``error_mode`` and ``<signal>_statements`` lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError
from gateway.ottl import Group, error_mode_problem, parse_groups

_KEYS = {"traces": "trace_statements", "metrics": "metric_statements", "logs": "log_statements"}


@dataclass(frozen=True)
class Config:
    #: What a statement that fails on an item does: ignore (log, rate-limited, and go on), silent (go on without
    #: logging) or propagate (refuse the whole batch with a retryable error). Groups may override it.
    error_mode: str = "propagate"
    #: Statements (strings, context inferred from ``span.``/``resource.``... prefixes) or groups
    #: ``{context, statements, conditions, error_mode}`` for traces.
    trace_statements: list[Any] = field(default_factory=list)
    #: The same for metrics (contexts resource, scope, metric, datapoint).
    metric_statements: list[Any] = field(default_factory=list)
    #: The same for logs (contexts resource, scope, log).
    log_statements: list[Any] = field(default_factory=list)

    def groups(self, signal: str, errors: list[str] | None = None) -> list[Group]:
        """The compiled groups of one signal; problems go to ``errors`` (raised when it is None)."""
        collect: list[str] = [] if errors is None else errors
        key = _KEYS[signal]
        groups = parse_groups(getattr(self, key), signal, self.error_mode, key, collect)
        if errors is None and collect:
            raise ConfigError(collect)
        return groups

    def validate(self) -> None:
        errors: list[str] = []
        problem = error_mode_problem("error_mode", self.error_mode)
        if problem:
            errors.append(problem)
        for signal in _KEYS:
            self.groups(signal, errors)
        if errors:
            raise ConfigError(errors)
