"""The ``resource`` processor: edits resource attributes. Touches one envelope per resource, never the items."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway import ComponentSettings, Processor, Signal

from .config import Config

_ENVELOPES = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics", Signal.LOGS: "resource_logs"}


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


class ResourceProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Any) -> None:
        super().__init__(settings, config, next_consumer)
        self._envelope = _ENVELOPES[settings.signal or Signal.TRACES]
        self._actions = [(a.key, a.action, _any_value(a.value) if a.action != "delete" else None)
                         for a in config.attributes]

    def _apply(self, batch: Any) -> Any:
        for envelope in getattr(batch, self._envelope):
            attributes = envelope.resource.attributes
            for key, action, value in self._actions:
                index = next((i for i, kv in enumerate(attributes) if kv.key == key), None)
                if action == "delete":
                    if index is not None:
                        del attributes[index]
                elif index is None:
                    if action != "update":
                        attributes.add(key=key).value.CopyFrom(value)
                elif action != "insert":
                    attributes[index].value.CopyFrom(value)
        return batch

    process_traces = process_metrics = process_logs = _apply
