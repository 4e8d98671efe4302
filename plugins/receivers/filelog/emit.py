"""Log records as OTLP wire bytes, assembled in Python and parsed once per batch into an
``ExportLogsServiceRequest`` (upb parses a megabyte in about a millisecond; building the same messages field by
field in Python costs several times more).

Two paths: lines straight from a file (the body is the line's UTF-8 bytes, not even decoded), and entries that
went through operators (bodies and attributes of any type).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from gateway.helpers.protowire import varint

from .operators.entry import Entry

__all__ = ["RecordBuffer", "encode_attributes"]

_ONE = [bytes((i,)) for i in range(128)]
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_INT64_MASK = (1 << 64) - 1


def _len(size: int) -> bytes:
    return _ONE[size] if size < 0x80 else varint(size)


def _framed(tag: bytes, payload: bytes) -> bytes:
    return tag + _len(len(payload)) + payload


def encode_any(value: Any) -> bytes:
    """An AnyValue message (without its own tag)."""
    if isinstance(value, str):
        try:
            raw = value.encode()
        except UnicodeEncodeError:  # lone surrogates
            raw = value.encode("utf-8", "replace")
        return b"\x0a" + _len(len(raw)) + raw
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            return b"\x18" + varint(value & _INT64_MASK)
        value = float(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, Mapping):
        return _framed(b"\x32", encode_attributes(value))
    if isinstance(value, list | tuple):
        return _framed(b"\x2a", b"".join(_framed(b"\x0a", encode_any(v)) for v in value))
    if isinstance(value, bytes | bytearray):
        return b"\x3a" + _len(len(value)) + bytes(value)
    if value is None:
        return b""
    return encode_any(str(value))


def encode_attributes(attributes: Mapping[str, Any]) -> bytes:
    """Repeated KeyValue fields with tag 1 (a KeyValueList's values; also Resource.attributes)."""
    parts = []
    for key, value in attributes.items():
        kv = (_KEYS.get(key) or _key_field(str(key))) + _framed(b"\x12", encode_any(value))
        parts.append(b"\x0a" + _len(len(kv)) + kv)
    return b"".join(parts)


#: Encoded ``KeyValue.key`` fields of attribute names seen so far; names repeat on every line.
_KEYS: dict[str, bytes] = {}
_MAX_KEYS = 4096


def _key_field(key: str) -> bytes:
    raw = key.encode("utf-8", "replace")
    field_bytes = b"\x0a" + _len(len(raw)) + raw
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    _KEYS[key] = field_bytes
    return field_bytes


def _record_attributes(attributes: Mapping[str, Any]) -> bytes:
    """The KeyValues with LogRecord.attributes' tag (6); string values (the common case) inline."""
    parts: list[bytes] = []
    append = parts.append
    keys = _KEYS
    for key, value in attributes.items():
        key_bytes = keys.get(key) or _key_field(str(key))
        if type(value) is str:
            try:
                raw = value.encode()
            except UnicodeEncodeError:
                raw = value.encode("utf-8", "replace")
            n = len(raw)
            value_len = 1 + (1 if n < 0x80 else len(varint(n))) + n
            append(b"\x32" + _len(len(key_bytes) + 1 + (1 if value_len < 0x80 else len(varint(value_len)))
                                  + value_len) + key_bytes + b"\x12" + _len(value_len) + b"\x0a" + _len(n) + raw)
        else:
            kv = key_bytes + _framed(b"\x12", encode_any(value))
            append(b"\x32" + _len(len(kv)) + kv)
    return b"".join(parts)


class RecordBuffer:
    """Encoded LogRecords grouped by resource, turned into one request by :meth:`request`."""

    def __init__(self) -> None:
        #: resource key → (encoded Resource attributes, list of framed records)
        self._groups: dict[Any, tuple[bytes, list[bytes]]] = {}
        self.count = 0
        self.size = 0

    def _group(self, resource: Mapping[str, Any] | None) -> list[bytes]:
        key: Any = None if not resource else id(resource)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (encode_attributes(resource) if resource else b"", [])
        return group[1]

    def add_lines(self, lines: Iterable[bytes], attributes: bytes, observed: int,
                  resource: Mapping[str, Any] | None = None) -> None:
        """Lines (valid UTF-8 bytes) as records with a string body; ``attributes`` already encoded (tag 6)."""
        out = self._group(resource)
        head = b"\x59" + _FIXED64.pack(observed) + attributes
        head_len = len(head)
        append = out.append
        count = size = 0
        for line in lines:
            n = len(line)
            body_len = 1 + (1 if n < 0x80 else len(varint(n))) + n
            record_len = head_len + 1 + (1 if body_len < 0x80 else len(varint(body_len))) + body_len
            append(b"\x12" + _len(record_len) + head + b"\x2a" + _len(body_len) + b"\x0a" + _len(n) + line)
            count += 1
            size += record_len
        self.count += count
        self.size += size

    def add_entries(self, entries: Iterable[Entry]) -> None:
        pack = _FIXED64.pack
        for entry in entries:
            parts: list[bytes] = []
            if entry.timestamp:
                parts.append(b"\x09" + pack(entry.timestamp & _INT64_MASK))
            if entry.severity:
                parts.append(b"\x10" + _ONE[entry.severity])
            if entry.severity_text:
                parts.append(_framed(b"\x1a", entry.severity_text.encode("utf-8", "replace")))
            if entry.body is not None:
                parts.append(_framed(b"\x2a", encode_any(entry.body)))
            if entry.attributes:
                parts.append(_record_attributes(entry.attributes))
            parts.append(b"\x59" + pack(entry.observed))
            record = b"".join(parts)
            self._group(entry.resource).append(b"\x12" + _len(len(record)) + record)
            self.count += 1
            self.size += len(record)

    def request(self) -> ExportLogsServiceRequest:
        merged: dict[bytes, list[bytes]] = {}
        for resource, records in self._groups.values():
            merged.setdefault(resource, []).extend(records)  # equal resources from different dicts meet here
        out = []
        for resource, records in merged.items():
            scope = b"".join(records)
            body = (_framed(b"\x0a", resource) if resource else b"") + b"\x12" + _len(len(scope)) + scope
            out.append(b"\x0a" + _len(len(body)) + body)
        return ExportLogsServiceRequest.FromString(b"".join(out))

    def clear(self) -> None:
        self._groups.clear()
        self.count = self.size = 0


def encode_record_attributes(attributes: Mapping[str, Any]) -> bytes:
    return _record_attributes(attributes)
