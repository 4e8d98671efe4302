"""The ``transform`` processor: runs its compiled statement groups over every batch, in order.

Statements were compiled to closures at config load (``gateway.ottl``). A batch in which no statement ran is
handed on marked unchanged, so its wire bytes stay usable downstream. With ``error_mode: propagate`` a failing
statement refuses the whole batch with a retryable error that names the statement and the item (see README).
"""

from __future__ import annotations

from typing import Any

from gateway import ComponentSettings, Consumer, Processor, RetryableError, Signal, unchanged
from gateway.ottl import ErrorReporter, OttlRunError, StatementGroup, ottl_metrics

from .config import Config


class TransformProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        signal = (settings.signal or Signal.TRACES).value
        errors = ottl_metrics(settings.telemetry.registry).errors
        name = str(settings.id)
        self.reporter = ErrorReporter(self.logger, lambda statement: errors.labels(name, signal, statement).inc())
        self.groups = [StatementGroup(signal, g.context, g.statements, g.conditions, g.error_mode, self.reporter)
                       for g in config.groups(signal)]

    def _apply(self, batch: Any) -> Any:
        changed = False
        try:
            for group in self.groups:
                changed |= group.run(batch)
        except OttlRunError as exc:
            raise RetryableError(f"{self.settings.id}: batch refused (error_mode: propagate): {exc}") from None
        if not changed:
            unchanged(batch)
        return batch

    process_traces = process_metrics = process_logs = _apply
