"""The ``filter`` processor: removes every item that matches one of its conditions, and envelopes left empty.

Conditions that read only resource or scope fields are tested once per envelope and drop it whole. Each drop is
counted with the condition that caused it (``otelgw_processor_filter_dropped_items_total``), and dropped spans,
data points and log records in ``otelgw_component_dropped_items_total{reason="filtered"}``. A batch left with
nothing is not handed on; a batch nothing was dropped from is handed on marked unchanged (its wire bytes stay).
"""

from __future__ import annotations

from typing import Any

from gateway import ComponentSettings, Consumer, Processor, RetryableError, Signal, unchanged
from gateway.ottl import ConditionSet, ErrorReporter, OttlRunError, ottl_metrics

from .config import Config

_ITEM_CONTEXTS = frozenset({"span", "datapoint", "log"})
_RESOURCES = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}


class FilterProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        self.signal = signal = (settings.signal or Signal.TRACES).value
        metrics = ottl_metrics(settings.telemetry.registry)
        name = str(settings.id)
        self.reporter = ErrorReporter(self.logger, lambda text: metrics.errors.labels(name, signal, text).inc())
        # otelgw_component_dropped_items_total counts spans, data points and log records: the drops of the
        # contexts that remove those (span events and whole metrics are counted per condition only).
        filtered = settings.telemetry.dropped("filtered", settings.signal or Signal.TRACES)
        self.sets = []
        for context, conditions in config.conditions(signal):
            def on_drop(condition: str, count: int, context: str = context) -> None:
                metrics.dropped.labels(name, signal, context, condition).inc(count)
                if context in _ITEM_CONTEXTS:
                    filtered.inc(count)
            self.sets.append(ConditionSet(signal, context, conditions, config.error_mode, self.reporter, on_drop))

    def _apply(self, batch: Any) -> Any:
        removed = 0
        try:
            for conditions in self.sets:
                removed += conditions.run(batch)
        except OttlRunError as exc:
            raise RetryableError(f"{self.settings.id}: batch refused (error_mode: propagate): {exc}") from None
        if not removed:
            unchanged(batch)
            return batch
        if not getattr(batch, _RESOURCES[self.signal]):
            return None  # everything was dropped: nothing to hand on
        return batch

    process_traces = process_metrics = process_logs = _apply
