"""Attribute values between OTLP and plain Python, for components that key state by attribute values (span
metrics, KPIs): read once per record, compared and hashed as Python values, written back when metrics go out."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OVERFLOW_ATTRIBUTE", "hashable_value", "key_value"]

#: The attribute of the one series that counts everything beyond a cardinality limit (as the Collector names it).
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"


def hashable_value(value: AnyValue) -> Any:
    """An attribute value as a hashable Python value; arrays and maps as their text."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind in ("bool_value", "int_value", "double_value", "bytes_value"):
        return getattr(value, kind)
    if kind is None:
        return ""
    return str(value).replace("\n", " ").strip()


def key_value(key: str, value: Any) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    elif isinstance(value, bytes):
        kv.value.bytes_value = value
    else:
        kv.value.string_value = str(value)
    return kv
