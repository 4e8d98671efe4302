"""The ``attributes`` processor: its actions run as compiled OTTL statements (see ``translate``).

Spans in traces pipelines, log records in logs pipelines, data points in metrics pipelines. Actions never fail
on data (a failed conversion leaves the value as it was), so errors are logged and counted like ``transform``'s
with ``error_mode: ignore``.
"""

from __future__ import annotations

from typing import Any

from gateway import ComponentSettings, Consumer, Processor, Signal, unchanged
from gateway.ottl import (
    ITEM,
    CompiledStatement,
    ErrorReporter,
    StatementGroup,
    compile_condition,
    compile_statement,
    ottl_metrics,
)

from .config import Config
from .translate import CONTEXTS, from_context, hash_matching, match_condition, statements


def build_statements(config: Config, signal: str) -> list[CompiledStatement]:
    context = CONTEXTS[signal]
    compiled = []
    for action in config.actions:
        for text in statements(action):
            compiled.append(compile_statement(text, context))
        if action.from_context:
            compiled.append(CompiledStatement(f"{action.action} {action.key!r} from_context {action.from_context!r}",
                                              context, action.action, from_context(action), None, ITEM))
        if action.action == "hash" and action.pattern:
            compiled.append(CompiledStatement(f"hash keys matching {action.pattern!r}", context, "hash",
                                              hash_matching(action.pattern), None, ITEM))
    return compiled


def build_guard(config: Config, signal: str) -> str | None:
    include = match_condition(config.include, signal) if config.include is not None else None
    exclude = match_condition(config.exclude, signal) if config.exclude is not None else None
    if exclude is not None:
        exclude = f"not ({exclude})"
    parts = [p for p in (include, exclude) if p is not None]
    return " and ".join(f"({p})" for p in parts) if parts else None


class AttributesProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        signal = (settings.signal or Signal.TRACES).value
        errors = ottl_metrics(settings.telemetry.registry).errors
        name = str(settings.id)
        reporter = ErrorReporter(self.logger, lambda text: errors.labels(name, signal, text).inc())
        guard = build_guard(config, signal)
        context = CONTEXTS[signal]
        conditions = [compile_condition(guard, context)] if guard else []
        self.group = StatementGroup(signal, context, build_statements(config, signal), conditions, "ignore",
                                    reporter)

    def _apply(self, batch: Any) -> Any:
        if not self.group.run(batch):
            unchanged(batch)
        return batch

    process_traces = process_metrics = process_logs = _apply
