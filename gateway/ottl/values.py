"""OTTL values in Python, and the way between them and OTLP's ``AnyValue`` / ``KeyValue`` messages.

OTTL values are plain Python: ``str``, ``int``, ``float``, ``bool``, ``bytes``, ``None`` (nil), ``dict`` (map),
``list`` (slice) and ``Time`` (a timestamp in Unix nanoseconds). Attribute lookups scan the repeated ``KeyValue``
field for one key and convert only that value: no dict of all attributes is ever built to read one of them.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["Time", "find", "find_index", "from_any", "set_any", "set_attribute", "to_dict", "type_name"]


class Time:
    """A point in time in Unix nanoseconds (OTTL's time.Time); subtracting two gives a duration in nanoseconds."""

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = int(ns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and other.ns == self.ns

    def __lt__(self, other: Time) -> bool:
        return self.ns < other.ns

    def __le__(self, other: Time) -> bool:
        return self.ns <= other.ns

    def __gt__(self, other: Time) -> bool:
        return self.ns > other.ns

    def __ge__(self, other: Time) -> bool:
        return self.ns >= other.ns

    def __hash__(self) -> int:
        return hash(self.ns)

    def __repr__(self) -> str:
        return f"Time({self.ns})"


def from_any(value: AnyValue) -> Any:
    """The Python value of an ``AnyValue`` (an empty one is nil)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return [from_any(v) for v in value.array_value.values]
    return {kv.key: from_any(kv.value) for kv in value.kvlist_value.values}


def to_dict(attributes: Any) -> dict[str, Any]:
    """A repeated ``KeyValue`` field as a dict (the last of duplicate keys wins)."""
    return {kv.key: from_any(kv.value) for kv in attributes}


def set_any(target: AnyValue, value: Any) -> None:
    """Store a Python value into an ``AnyValue`` in place. ``None`` clears it."""
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        values = target.kvlist_value.values
        del values[:]
        for key, item in value.items():
            set_any(values.add(key=str(key)).value, item)
    elif isinstance(value, list | tuple):
        target.array_value.SetInParent()
        items = target.array_value.values
        del items[:]
        for item in value:
            set_any(items.add(), item)
    elif isinstance(value, Time):
        target.int_value = value.ns
    elif value is None:
        target.Clear()
    else:
        target.string_value = str(value)


def find(attributes: Any, key: str) -> AnyValue | None:
    """The value of ``key`` in a repeated ``KeyValue`` field, or None."""
    for kv in attributes:
        if kv.key == key:
            return kv.value
    return None


def find_index(attributes: Any, key: str) -> int:
    """The index of ``key`` in a repeated ``KeyValue`` field, or -1."""
    for i, kv in enumerate(attributes):
        if kv.key == key:
            return i
    return -1


def set_attribute(attributes: Any, key: str, value: Any) -> None:
    """Upsert ``key`` = ``value`` in a repeated ``KeyValue`` field."""
    for kv in attributes:
        if kv.key == key:
            set_any(kv.value, value)
            return
    kv = attributes.add()
    kv.key = key
    set_any(kv.value, value)


def type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "int", float: "double", bytes: "bytes", dict: "map", list: "slice",
            Time: "time"}.get(type(value), type(value).__name__)


_ = KeyValue  # re-exported type for annotations elsewhere
