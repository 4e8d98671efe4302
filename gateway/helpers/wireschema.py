"""Is a request well formed, and how many items does it hold, without parsing it: ``check``.

The otlp receiver answers a sender only after it knows the request is one the protobuf parser (upb) accepts, and
how many spans, data points or log records it holds. Parsing the whole request only to learn that costs about a
tenth of the pipeline's time per span; ``check`` runs the C walk ``validate`` of ``gateway/helpers/_spanscan.c``
instead, which accepts exactly what upb accepts (``docs/protocols.md §1.5``) and builds nothing. Its twin
``check_python`` parses (where the extension is not built, or with ``OTELGW_PURE_PYTHON=1``) and hands the parsed
message back, so that the caller need not parse again.

The C walk reads a *schema*: the request's message types as compact tables, built here once per signal from the
generated messages' descriptors, so it follows the ``.proto`` sources with no field list written by hand. Layout
(integers little-endian, u32 unless said):

- header: ``b"OTWS"``, the number of messages M; message 0 is the request;
- M message records: the offset of its table in the schema, the table's length in entries, the number of tracked
  oneofs (at most 8);
- tables, one u32 entry per tag (field number * 8 + wire type) up to the highest field number's: the action
  (low byte: what to do with the field, ``_ACTIONS``), the oneof slot (second byte: 0 none, else 1 + the index
  of the tracked oneof), and for a message field the index of its message (high 16 bits). A known field with
  another wire type than its own has the entry of an unknown field: upb keeps it unread.

A oneof is tracked when a member can hold items: a parse keeps its last member only, so only that member's items
count (``count_items`` reads ``WhichOneof``). A singular message field merges its occurrences, which adds their
items up; a tracked oneof inside such a field would need the oneof's state across occurrences, which the walk
does not keep, so ``build`` refuses that shape (OTLP has none: ``Metric`` is always a repeated element).
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from functools import cache

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from gateway.component import Batch, Signal, count_items
from gateway.helpers import native

__all__ = ["build", "check", "check_python", "item_fields", "schema"]

# Actions of the C walk (the ACT_* constants of _spanscan.c), and the wire type each expects.
# 0 is an unknown field (also a known one with another wire type than its own): skipped by its wire type.
_VARINT, _FIXED64, _FIXED32, _BYTES, _STRING, _MESSAGE, _ITEM = 1, 2, 3, 4, 5, 6, 7
_PACKED = {_VARINT: 8, _FIXED64: 9, _FIXED32: 10}
_WIRE_TYPE = {_VARINT: 0, _FIXED64: 1, _FIXED32: 5, _BYTES: 2, _STRING: 2, _MESSAGE: 2, _ITEM: 2}
_ONEOF_SLOTS = 8
_MESSAGES = 0xFFFF  # message indexes are 16 bits
_KINDS = {
    FieldDescriptor.TYPE_DOUBLE: _FIXED64, FieldDescriptor.TYPE_FIXED64: _FIXED64,
    FieldDescriptor.TYPE_SFIXED64: _FIXED64,
    FieldDescriptor.TYPE_FLOAT: _FIXED32, FieldDescriptor.TYPE_FIXED32: _FIXED32,
    FieldDescriptor.TYPE_SFIXED32: _FIXED32,
    FieldDescriptor.TYPE_INT64: _VARINT, FieldDescriptor.TYPE_UINT64: _VARINT, FieldDescriptor.TYPE_INT32: _VARINT,
    FieldDescriptor.TYPE_UINT32: _VARINT, FieldDescriptor.TYPE_BOOL: _VARINT, FieldDescriptor.TYPE_ENUM: _VARINT,
    FieldDescriptor.TYPE_SINT32: _VARINT, FieldDescriptor.TYPE_SINT64: _VARINT,
    FieldDescriptor.TYPE_STRING: _STRING, FieldDescriptor.TYPE_BYTES: _BYTES,
    FieldDescriptor.TYPE_MESSAGE: _MESSAGE,
}
# Field numbers are at most 2^29 - 1; a table indexed by tag stays small only for the small numbers real
# protocols use. OTLP's highest is 16.
_HIGHEST_NUMBER = 4095


def item_fields(signal: Signal) -> list[FieldDescriptor]:
    """The repeated fields whose elements ``count_items`` counts: spans, log records, and the data points of every
    member of ``Metric``'s ``data`` oneof (so that a metric type added to the protos is counted too)."""
    if signal is Signal.TRACES:
        return [trace_pb2.ScopeSpans.DESCRIPTOR.fields_by_name["spans"]]
    if signal is Signal.LOGS:
        return [logs_pb2.ScopeLogs.DESCRIPTOR.fields_by_name["log_records"]]
    data = metrics_pb2.Metric.DESCRIPTOR.oneofs_by_name["data"]
    return [member.message_type.fields_by_name["data_points"] for member in data.fields]


@cache
def schema(signal: Signal) -> bytes:
    """The schema of the signal's export request, built once."""
    return build(signal.request_type.DESCRIPTOR, item_fields(signal))


def build(root: Descriptor, items: Collection[FieldDescriptor]) -> bytes:
    """The schema of ``root`` and every message type it reaches, with ``items`` the fields whose elements count."""
    messages = _reachable(root)
    index = {message.full_name: i for i, message in enumerate(messages)}
    item_names = {field.full_name for field in items}
    holds = _holding_items(messages, item_names)
    tracked = {message.full_name: [oneof for oneof in message.oneofs
                                   if any(_holds(member, holds) for member in oneof.fields)]
               for message in messages}
    _refuse_merged_oneofs(messages, tracked)
    if len(messages) > _MESSAGES:
        raise ValueError(f"{root.full_name} reaches more than {_MESSAGES} message types")
    header = b"OTWS" + struct.pack("<I", len(messages))
    records = bytearray()
    tables = bytearray()
    table_start = len(header) + 12 * len(messages)
    for message in messages:
        oneofs = tracked[message.full_name]
        if len(oneofs) > _ONEOF_SLOTS:
            raise ValueError(f"{message.full_name}: more than {_ONEOF_SLOTS} oneofs hold items")
        highest = max((field.number for field in message.fields), default=0)
        if highest > _HIGHEST_NUMBER:
            raise ValueError(f"{message.full_name}: field number {highest} is above {_HIGHEST_NUMBER}")
        tags = 8 * (highest + 1)
        records += struct.pack("<III", table_start + len(tables), tags, len(oneofs))
        table = bytearray(4 * tags)
        for field in message.fields:
            slot = next((i + 1 for i, oneof in enumerate(oneofs) if field.containing_oneof is oneof), 0)
            action = _kind(field)
            target = 0
            if action == _MESSAGE:
                target = index[field.message_type.full_name]
                action = _ITEM if field.full_name in item_names else _MESSAGE
            struct.pack_into("<BBH", table, 4 * (field.number * 8 + _WIRE_TYPE[action]), action, slot, target)
            if field.is_repeated and action in _PACKED:  # a repeated scalar is read packed or not, either way
                struct.pack_into("<BBH", table, 4 * (field.number * 8 + 2), _PACKED[action], slot, 0)
        tables += table
    return bytes(header + records + tables)


def _kind(field: FieldDescriptor) -> int:
    """The field's kind; a string is checked as UTF-8 where upb checks it (proto3, or the editions feature)."""
    if field.type not in _KINDS:  # groups: no OTLP field is one
        raise ValueError(f"{field.full_name}: wire encoding of type {field.type} is not supported")
    kind = _KINDS[field.type]
    if kind == _MESSAGE and _feature(field, "message_encoding", "proto3") not in (None, "LENGTH_PREFIXED"):
        raise ValueError(f"{field.full_name}: delimited message encoding is not supported")
    if kind == _STRING and _feature(field, "utf8_validation", "VERIFY") != "VERIFY":  # upb reads it as bytes
        return _BYTES
    return kind


def _feature(field: FieldDescriptor, name: str, proto3_value: str) -> str | None:
    """A resolved editions feature of the field by name; from the file's syntax where protobuf does not say."""
    features = getattr(field, "_GetFeatures", None)
    if features is not None:
        resolved = features()
        value = getattr(resolved, name)
        return str(resolved.DESCRIPTOR.fields_by_name[name].enum_type.values_by_number[value].name)
    file = descriptor_pb2.FileDescriptorProto()
    field.file.CopyToProto(file)
    return proto3_value if file.syntax == "proto3" else None


def _reachable(root: Descriptor) -> list[Descriptor]:
    """Every message type root reaches through message fields, root first, each once."""
    order = [root]
    seen = {root.full_name}
    for message in order:  # grows while it is walked
        for field in message.fields:
            target = field.message_type
            if target is not None and target.full_name not in seen:
                seen.add(target.full_name)
                order.append(target)
    return order


def _holding_items(messages: list[Descriptor], item_names: set[str]) -> set[str]:
    """The message types that can hold an item at any depth (to a fixed point: types may be recursive)."""
    holds: set[str] = set()
    changed = True
    while changed:
        changed = False
        for message in messages:
            if message.full_name not in holds and any(
                    field.full_name in item_names or _holds(field, holds) for field in message.fields):
                holds.add(message.full_name)
                changed = True
    return holds


def _holds(field: FieldDescriptor, holds: set[str]) -> bool:
    return field.message_type is not None and field.message_type.full_name in holds


def _refuse_merged_oneofs(messages: list[Descriptor], tracked: dict[str, list[object]]) -> None:
    """Refuses a tracked oneof that a singular message field can reach through singular message fields: two
    occurrences of that field merge, and the oneof's last member would then depend on both."""
    def merges_oneof(message: Descriptor, seen: set[str]) -> bool:
        if tracked[message.full_name]:
            return True
        seen.add(message.full_name)
        return any(field.message_type is not None and not field.is_repeated
                   and field.message_type.full_name not in seen and merges_oneof(field.message_type, seen)
                   for field in message.fields)

    for message in messages:
        for field in message.fields:
            if field.message_type is not None and not field.is_repeated and merges_oneof(field.message_type, set()):
                raise ValueError(f"{field.full_name}: a singular message field holding a oneof with items is not "
                                 "supported")


def check(signal: Signal, data: bytes) -> tuple[int, Batch | None]:
    """The number of items in a serialized export request of the signal, and the parsed request when this had
    to parse it (no C extension): ValueError (``malformed protobuf: ...``) exactly where upb's ``FromString``
    fails."""
    module = native.spanscan
    if module is None:
        return check_python(signal, data)
    return module.validate(data, schema(signal)), None


def check_python(signal: Signal, data: bytes) -> tuple[int, Batch | None]:
    """Twin of ``check`` without the extension: the parse, and ``count_items`` of it."""
    try:
        batch = signal.request_type.FromString(data)
    except DecodeError as error:
        raise ValueError(f"malformed protobuf: {error}") from None
    return count_items(signal, batch), batch
