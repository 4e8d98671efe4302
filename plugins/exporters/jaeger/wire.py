"""Protobuf wire format, written by hand: varints, length-delimited fields, and OTLP → Jaeger key-values.

A serialized OTLP ``KeyValue`` and a Jaeger ``KeyValue`` differ only after the key::

    OTLP    0a <len> key  12 <len> [AnyValue: 0a <len> str | 18 varint | 10 bool | 21 double | 3a <len> bytes]
    Jaeger  0a <len> key  [10 <v_type>]  1a <len> str | 28 varint | 20 bool | 31 double | 3a <len> bytes

so the common case is a slice and a concatenation (``jaeger_key_value``). Anything else (arrays, maps, empty
values, keys or values over 127 bytes, unexpected fields) takes the slow path through the real messages.
"""

from __future__ import annotations

import json

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from gateway import any_value_to_python, field, timestamp, varint
from gateway.protos.jaeger.api_v2 import model_pb2

# The generic helpers are re-exported: the translator reads them as ``wire.field`` and friends.
__all__ = ["any_value_to_python", "field", "jaeger_key_value", "string_tag", "timestamp", "varint"]

# OTLP AnyValue field tag → what replaces it in a Jaeger KeyValue (v_type, then the value field's tag).
_VALUE_TAGS = {
    0x0A: b"\x1a",          # string_value → v_str (STRING = 0 is the default: no v_type)
    0x18: b"\x10\x02\x28",  # int_value → v_type INT64, v_int64 (same varint)
    0x10: b"\x10\x01\x20",  # bool_value → v_type BOOL, v_bool
    0x21: b"\x10\x03\x31",  # double_value → v_type FLOAT64, v_float64 (same 8 bytes)
    0x3A: b"\x10\x04\x3a",  # bytes_value → v_type BINARY, v_binary
}


def string_tag(key: str, value: str) -> bytes:
    """A Jaeger STRING KeyValue (serialized message, no field tag)."""
    return field(b"\x0a", key.encode()) + field(b"\x1a", value.encode())


def jaeger_key_value(otlp: bytes) -> bytes:
    """A serialized OTLP KeyValue as a serialized Jaeger KeyValue (docs/protocols.md §3.2: attributes → tags)."""
    size = len(otlp)
    if size > 4 and otlp[0] == 0x0A and otlp[1] < 0x80:
        value_at = 2 + otlp[1]  # the AnyValue field, after a key of under 128 bytes
        if value_at + 2 < size and otlp[value_at] == 0x12:
            length, start = otlp[value_at + 1], value_at + 2
            if length >= 0x80 and otlp[start] < 0x80:  # a two-byte length: values up to 16 KiB
                length, start = (length & 0x7F) | (otlp[start] << 7), start + 1
            if start + length == size and start < size:
                replacement = _VALUE_TAGS.get(otlp[start])
                if replacement is not None:
                    return otlp[:value_at] + replacement + otlp[start + 1:]
    return _slow_key_value(otlp)


def _slow_key_value(otlp: bytes) -> bytes:
    source = KeyValue.FromString(otlp)
    out = model_pb2.KeyValue(key=source.key)
    value = source.value
    kind = value.WhichOneof("value")
    if kind == "string_value":
        out.v_str = value.string_value
    elif kind == "bool_value":
        out.v_type, out.v_bool = model_pb2.BOOL, value.bool_value
    elif kind == "int_value":
        out.v_type, out.v_int64 = model_pb2.INT64, value.int_value
    elif kind == "double_value":
        out.v_type, out.v_float64 = model_pb2.FLOAT64, value.double_value
    elif kind == "bytes_value":
        out.v_type, out.v_binary = model_pb2.BINARY, value.bytes_value
    elif kind in ("array_value", "kvlist_value"):
        # Jaeger has no composite values: the translator's rule is a STRING holding JSON.
        out.v_str = json.dumps(any_value_to_python(value), ensure_ascii=False, separators=(",", ":"))
    # An empty value is an empty STRING, as pcommon's AsString gives.
    return out.SerializeToString()
