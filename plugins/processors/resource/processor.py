"""The ``resource`` processor: edits resource attributes. Touches one envelope per resource, never the items."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway import ComponentSettings, Consumer, Processor, Signal, client
from gateway.ottl import from_any, set_any

from .config import Action, Config

_ENVELOPES = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics", Signal.LOGS: "resource_logs"}
#: An edit of one resource's attribute list (a RepeatedCompositeContainer of KeyValue).
Edit = Callable[[Any], None]


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _index(attributes: Any, key: str) -> int | None:
    return next((i for i, kv in enumerate(attributes) if kv.key == key), None)


def _setter(action: Action) -> Edit:
    """insert / update / upsert, from a value, another attribute or the client metadata."""
    key, mode = action.key, action.action
    fixed = _any_value(action.value) if action.value is not None else None

    def source(attributes: Any) -> AnyValue | None:
        if fixed is not None:
            return fixed
        if action.from_attribute:
            index = _index(attributes, action.from_attribute)
            if index is None:
                return None
            copy = AnyValue()
            copy.CopyFrom(attributes[index].value)
            return copy
        text = client.from_context(action.from_context)
        return AnyValue(string_value=text) if text is not None else None

    def run(attributes: Any) -> None:
        index = _index(attributes, key)
        if (mode == "insert" and index is not None) or (mode == "update" and index is None):
            return
        value = source(attributes)
        if value is None:
            return
        if index is None:
            attributes.add(key=key).value.CopyFrom(value)
        else:
            attributes[index].value.CopyFrom(value)
    return run


def _selected(action: Action) -> Callable[[str], bool]:
    if action.pattern:
        search = re.compile(action.pattern).search
        return lambda key: search(key) is not None
    return lambda key: key == action.key


def _delete(action: Action) -> Edit:
    chosen = _selected(action)

    def run(attributes: Any) -> None:
        for index in reversed([i for i, kv in enumerate(attributes) if chosen(kv.key)]):
            del attributes[index]
    return run


def _hash(action: Action) -> Edit:
    chosen = _selected(action)

    def run(attributes: Any) -> None:
        for kv in attributes:
            if chosen(kv.key):
                value = from_any(kv.value)
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                kv.value.Clear()
                kv.value.string_value = hashlib.sha256(text.encode()).hexdigest()
    return run


_CONVERT: dict[str, Callable[[Any], Any]] = {"int": lambda v: int(float(v)) if isinstance(v, str) else int(v),
                                             "double": float, "string": lambda v: json.dumps(v) if
                                             isinstance(v, bool) else str(v)}


def _convert(action: Action) -> Edit:
    key, convert = action.key, _CONVERT[action.converted_type]

    def run(attributes: Any) -> None:
        index = _index(attributes, key)
        if index is None:
            return
        try:
            converted = convert(from_any(attributes[index].value))
        except (TypeError, ValueError, OverflowError):
            return  # as in the Collector: a value that does not convert is left as it was
        attributes[index].value.Clear()
        set_any(attributes[index].value, converted)
    return run


_EDITS: dict[str, Callable[[Action], Edit]] = {"insert": _setter, "update": _setter, "upsert": _setter,
                                               "delete": _delete, "hash": _hash, "convert": _convert}


class ResourceProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        self._envelope = _ENVELOPES[settings.signal or Signal.TRACES]
        self._edits = [_EDITS[action.action](action) for action in config.attributes]

    def _apply(self, batch: Any) -> Any:
        for envelope in getattr(batch, self._envelope):
            attributes = envelope.resource.attributes
            for edit in self._edits:
                edit(attributes)
        return batch

    process_traces = process_metrics = process_logs = _apply
