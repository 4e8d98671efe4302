"""The protobuf wire format written by hand, for exporters that assemble requests from bytes (jaeger, loki):
varints, length-delimited fields, Timestamp/Duration fields, and AnyValue as JSON-ready Python."""

from __future__ import annotations

import base64
import math
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["any_value_to_python", "field", "timestamp", "varint"]

_ONE_BYTE = [bytes((i,)) for i in range(128)]


def varint(value: int) -> bytes:
    """A non-negative int as a protobuf varint (unrolled up to 5 bytes: lengths, ids, nanoseconds, seconds)."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0x20_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 0x1000_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80, value >> 21))
    if value < 0x8_0000_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80,
                      value >> 21 & 0x7F | 0x80, value >> 28))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the payload's length, the payload."""
    size = len(payload)
    return tag + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + payload


def timestamp(tag: bytes, unix_nano: int) -> bytes:
    """A google.protobuf.Timestamp (or Duration) field from nanoseconds >= 0."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        prefix = b"\x08" + varint(seconds) if seconds else b""
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[seconds] = prefix
    body = prefix + b"\x10" + varint(nanos) if nanos else prefix
    return tag + _ONE_BYTE[len(body)] + body


# Timestamps of one batch share a handful of seconds values; their varint is computed once.
_SECONDS: dict[int, bytes] = {}


def any_value_to_python(value: AnyValue) -> Any:
    """An AnyValue as JSON-ready Python: bytes as base64 (as Go's encoding/json does), maps in their order."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: any_value_to_python(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [any_value_to_python(item) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON has no NaN or Infinity
    return getattr(value, kind) if kind else None
