"""Log records as OTLP wire bytes, assembled in Python and parsed once per batch into an
``ExportLogsServiceRequest`` (upb parses a megabyte in about a millisecond; building the same messages field by
field in Python costs several times more).

Two paths: lines straight from a file (the body is the line's UTF-8 bytes, not even decoded), and entries that
went through operators (bodies and attributes of any type).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from gateway import varint

from .operators.entry import Entry

__all__ = ["SMALL_VARINTS", "RecordBuffer", "encode_attributes", "lookup_pair", "pair", "severity_fields"]

_ONE = [bytes((i,)) for i in range(128)]
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_INT64_MASK = (1 << 64) - 1


#: Varints of 0..16383 (one or two bytes): lengths of attributes, bodies and records, and small numbers.
_VARINT = [varint(i) for i in range(0x4000)]
SMALL_VARINTS = _VARINT  # (jsoncolumns shares the table)


def _len(size: int) -> bytes:
    return _VARINT[size] if size < 0x4000 else varint(size)


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


#: LogRecord.severity_number fields, by number.
_SEVERITY = [b"\x10" + bytes((i,)) for i in range(128)]
#: LogRecord.severity_text fields of the texts seen (INFO, WARNING, error...).
_SEVERITY_TEXT: dict[str, bytes] = {}


def _severity_text(text: str) -> bytes:
    encoded = _framed(b"\x1a", text.encode("utf-8", "replace"))
    if len(_SEVERITY_TEXT) < 1024:
        _SEVERITY_TEXT[text] = encoded
    return encoded


def _string_pair(key: str, value: str) -> bytes:
    key_bytes = _KEYS.get(key) or _key_field(key)
    try:
        raw = value.encode()
    except UnicodeEncodeError:  # lone surrogates
        raw = value.encode("utf-8", "replace")
    n = len(raw)
    value_len = (2 if n < 0x80 else 1 + len(varint(n))) + n
    kv_len = len(key_bytes) + (2 if value_len < 0x80 else 1 + len(varint(value_len))) + value_len
    return (b"\x32" + (_ONE[kv_len] if kv_len < 0x80 else varint(kv_len)) + key_bytes + b"\x12"
            + (_ONE[value_len] if value_len < 0x80 else varint(value_len)) + b"\x0a"
            + (_ONE[n] if n < 0x80 else varint(n)) + raw)


def pair(key: Any, value: Any) -> bytes:
    """One LogRecord attribute (tag 6) of any value type."""
    if type(value) is str:
        return _string_pair(str(key), value)
    kv = (_KEYS.get(key) or _key_field(str(key))) + _framed(b"\x12", encode_any(value))
    return b"\x32" + _len(len(kv)) + kv


class _PairCache(dict):  # type: ignore[type-arg]
    """Encoded attributes by (key, value) item: levels, logger names, paths and file names repeat on most lines,
    and ``b"".join(map(cache.__getitem__, attributes.items()))`` then copies them without a Python-level loop.

    Only string values are stored: ``(k, True)``, ``(k, 1)`` and ``(k, 1.0)`` are equal as dict keys but encode
    differently, and a string never equals a non-string. Misses (values seen once: ids, timestamps, numbers)
    are encoded inline here, the common types without further calls. A key that has had ``_DISTINCT_PER_KEY``
    values stored (a timestamp, a request id) stores no more: its values would only push the repeating ones out.
    """

    def __init__(self) -> None:
        super().__init__()
        #: key → how many of its values are stored.
        self.stored: dict[Any, int] = {}

    def __missing__(self, item: tuple[Any, Any]) -> bytes:
        key, value = item
        key_part = _KEY_PARTS.get(key) or _key_part(key)  # key field + the value's tag (KeyValue.value)
        kind = type(value)
        if kind is int and 0 <= value < 0x20_0000:  # ids, counts, status codes: up to three varint bytes
            number = _VARINT[value] if value < 0x4000 else \
                bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
            kv_len = len(key_part) + len(number) + 2
            if kv_len < 0x80:
                return _TAG6[kv_len] + key_part + _ONE[len(number) + 1] + b"\x18" + number
        elif kind is str:
            try:
                raw = value.encode()
            except UnicodeEncodeError:  # lone surrogates
                raw = value.encode("utf-8", "replace")
            n = len(raw)
            kv_len = len(key_part) + n + 3
            if kv_len < 0x80:
                encoded = _TAG6[kv_len] + key_part + _STRING_HEAD[n] + raw
            else:
                encoded = _string_pair(str(key), value)
            if n <= _CACHEABLE_LEN:
                stored = self.stored.get(key, 0)
                if stored < _DISTINCT_PER_KEY:
                    if len(self) >= _MAX_PAIRS:
                        self.clear()
                        self.stored.clear()
                        stored = 0
                    self.stored[key] = stored + 1
                    self[item] = encoded
            return encoded
        return pair(key, value)


#: LogRecord.attributes' tag (6) and a one-byte length, by length.
_TAG6 = [b"\x32" + bytes((i,)) for i in range(128)]
#: A string AnyValue's length, tag and one-byte length, by string length (short strings).
_STRING_HEAD = [bytes((n + 2, 0x0A, n)) for n in range(126)] + [b""] * 2
_KEY_PARTS: dict[str, bytes] = {}


def _key_part(key: Any) -> bytes:
    part = (_KEYS.get(key) or _key_field(str(key))) + b"\x12"
    if len(_KEY_PARTS) >= _MAX_KEYS:
        _KEY_PARTS.clear()
    _KEY_PARTS[key] = part
    return part


_MAX_PAIRS = 65536
_DISTINCT_PER_KEY = 4096
_CACHEABLE_LEN = 48
_PAIRS = _PairCache()
lookup_pair = _PAIRS.__getitem__


def _record_attributes(attributes: Mapping[str, Any]) -> bytes:
    """The KeyValues with LogRecord.attributes' tag (6)."""
    try:
        return b"".join(map(lookup_pair, attributes.items()))
    except TypeError:  # an unhashable value (a map or list): encode item by item
        return b"".join(pair(k, v) for k, v in attributes.items())


class _Fallback(Exception):
    pass


def severity_fields(lane: Any, value: Any) -> bytes:
    """LogRecord.severity_number and severity_text of a level value, remembered for string levels."""
    number = lane.severity_number(value)
    text = lane.severity_text(value, number)
    encoded = (_SEVERITY[number] if number else b"") + (
        (_SEVERITY_TEXT.get(text) or _severity_text(text)) if text else b"")
    if type(value) is str and len(lane.severities) < 1024:
        lane.severities[value] = encoded
    return encoded


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
            line_size = _VARINT[n] if n < 0x4000 else varint(n)
            body_len = 1 + len(line_size) + n
            body_size = _VARINT[body_len] if body_len < 0x4000 else varint(body_len)
            record_len = head_len + 1 + len(body_size) + body_len
            append(b"\x12" + _len(record_len) + head + b"\x2a" + body_size + b"\x0a" + line_size + line)
            count += 1
            size += record_len
        self.count += count
        self.size += size

    def add_encoded(self, pieces: Iterable[bytes], count: int, size: int,
                    resource: Mapping[str, Any] | None) -> None:
        """``count`` records already framed (``pieces`` join to them; ``size``: their bytes without the frames)."""
        self._group(resource).extend(pieces)
        self.count += count
        self.size += size

    def add_json_lines(self, bodies: list[str] | list[bytes], lane: Any, file_attributes: bytes,
                       file_keys: frozenset[str], observed: int, resource: Mapping[str, Any] | None,
                       fallback: Callable[[str], list[Entry]]) -> None:
        """JSON lines (``str``, or valid UTF-8 ``bytes``) parsed into attributes (``jsonlane``), each encoded as
        ``add_entries`` would encode the entry the general path builds; ``fallback(body)`` runs a line through
        that path instead. ``jsoncolumns.add_json_batch`` does the same for many lines at once."""
        pack = _FIXED64.pack
        group = self._group(resource)
        append = group.append
        # What every record of the batch ends with: the file's attributes, then (after the line's) the time seen.
        observed_field = b"\x59" + pack(observed)
        loads = orjson.loads
        lookup = lookup_pair
        time_key, parse_time = lane.time_key, lane.parse_time
        severity_key = lane.severity_key
        severities = lane.severities
        count = size = 0
        time_field = severity = b""
        for body in bodies:
            try:
                parsed = loads(body)
                if type(parsed) is not dict or not file_keys.isdisjoint(parsed):
                    raise _Fallback
                if time_key is not None:
                    value = parsed.get(time_key)
                    if value is None:
                        raise _Fallback
                    time_field = b"\x09" + pack(parse_time(value) & _INT64_MASK)
                if severity_key is not None:
                    value = parsed.get(severity_key)
                    if value is None:
                        raise _Fallback
                    # Levels repeat: their number and text fields are encoded once per level string.
                    known = severities.get(value) if type(value) is str else None
                    severity = known if known is not None else severity_fields(lane, value)
                raw = body if isinstance(body, bytes) else body.encode()
                n = len(raw)
                if n < 0x3FF0:
                    length = _VARINT[n]
                    body_field = b"\x2a" + _VARINT[n + len(length) + 1] + b"\x0a" + length + raw
                else:
                    length = varint(n)
                    body_field = b"\x2a" + varint(n + len(length) + 1) + b"\x0a" + length + raw
                record = b"".join((time_field, severity, body_field, file_attributes,
                                   b"".join(map(lookup, parsed.items())), observed_field))
            except Exception:
                self.add_entries(fallback(body.decode() if isinstance(body, bytes) else body))
                continue
            n = len(record)
            append(b"\x12" + (_VARINT[n] if n < 0x4000 else varint(n)) + record)
            count += 1
            size += n
        self.count += count
        self.size += size

    def add_entries(self, entries: Iterable[Entry]) -> None:
        pack = _FIXED64.pack
        group = self._group(None)
        group_resource: Any = None
        count = size = 0
        observed, observed_field = 0, b"\x59" + pack(0)
        for entry in entries:
            parts: list[bytes] = []
            if entry.timestamp:
                parts.append(b"\x09" + pack(entry.timestamp & _INT64_MASK))
            if entry.severity:
                parts.append(_SEVERITY[entry.severity])
            if entry.severity_text:
                text = _SEVERITY_TEXT.get(entry.severity_text) or _severity_text(entry.severity_text)
                parts.append(text)
            body = entry.body
            if type(body) is str:
                try:
                    raw = body.encode()
                except UnicodeEncodeError:
                    raw = body.encode("utf-8", "replace")
                n = len(raw)
                if n < 0x3FF0:
                    length = _VARINT[n]
                    parts.append(b"\x2a" + _VARINT[n + len(length) + 1] + b"\x0a" + length + raw)
                else:
                    length = varint(n)
                    parts.append(b"\x2a" + varint(n + len(length) + 1) + b"\x0a" + length + raw)
            elif body is not None:
                parts.append(_framed(b"\x2a", encode_any(body)))
            if entry.attributes:
                try:
                    parts.append(b"".join(map(lookup_pair, entry.attributes.items())))
                except TypeError:
                    parts.append(_record_attributes(entry.attributes))
            if entry.observed != observed:
                observed = entry.observed
                observed_field = b"\x59" + pack(observed)
            parts.append(observed_field)
            record = b"".join(parts)
            if entry.resource is not group_resource:
                group_resource = entry.resource
                group = self._group(group_resource)
            n = len(record)
            group.append(b"\x12" + (_VARINT[n] if n < 0x4000 else varint(n)) + record)
            count += 1
            size += n
        self.count += count
        self.size += size

    def request(self) -> tuple[ExportLogsServiceRequest, bytes]:
        """The request, and the wire bytes it was parsed from (``gateway.wirebytes``)."""
        merged: dict[bytes, list[bytes]] = {}
        for resource, records in self._groups.values():
            merged.setdefault(resource, []).extend(records)  # equal resources from different dicts meet here
        out = []
        for resource, records in merged.items():
            scope = b"".join(records)
            body = (_framed(b"\x0a", resource) if resource else b"") + b"\x12" + _len(len(scope)) + scope
            out.append(b"\x0a" + _len(len(body)) + body)
        wire = b"".join(out)
        return ExportLogsServiceRequest.FromString(wire), wire

    def clear(self) -> None:
        self._groups.clear()
        self.count = self.size = 0


def encode_record_attributes(attributes: Mapping[str, Any]) -> bytes:
    return _record_attributes(attributes)
