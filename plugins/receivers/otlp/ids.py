"""Trace and span ids of the wrong size, refused per item before a batch goes anywhere.

The OTLP specification makes a span's ``trace_id`` 16 bytes and its ``span_id`` 8 bytes, neither all zero, and
``parent_span_id`` empty or 8 bytes; a log record's ids are empty (no trace context) or 16 and 8 bytes. An item
that breaks this would travel on inside a merged batch (the batch processor) and make a backend refuse the whole
merged request, losing other senders' acknowledged data. So the receiver takes it out here and tells its sender
with ``partial_success``; the valid items of the same request go on.

Cost: a protobuf request has its bytes, and one walk over them in C (``spanscan.ids_valid``) proves that every
item is valid (about a twentieth of the real parse); without the C extension, a second parse of them with a
schema that knows only the ids, plus one regular expression over the ids, does (about a quarter). Only a
request that fails that, and JSON (no bytes), are walked item by item in Python. The batch is only changed when
something is wrong, which is rare.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from gateway import Batch, Signal, spanscan

from .responses import RESPONSE_TYPES

__all__ = ["Rejection", "drop_invalid_ids", "ids_valid"]

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(frozen=True)
class Rejection:
    """Items taken out of a request, by reason (``invalid_trace_id`` ...), and the sender's explanation."""

    count: int
    reasons: dict[str, int]
    message: str

    def response(self, signal: Signal) -> Message:
        """The Export*ServiceResponse whose ``partial_success`` reports this rejection."""
        response = RESPONSE_TYPES[signal]()
        partial: Any = response.partial_success  # type: ignore[attr-defined]
        if signal is Signal.TRACES:
            partial.rejected_spans = self.count
        elif signal is Signal.LOGS:
            partial.rejected_log_records = self.count
        else:
            partial.rejected_data_points = self.count
        partial.error_message = self.message
        return response


def _span_problem(span: Any) -> tuple[str, str] | None:
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_id) != 16:
        return "invalid_trace_id", f"trace_id must be 16 bytes, got {len(trace_id)}"
    if trace_id == _ZERO_TRACE:
        return "invalid_trace_id", "trace_id must not be all zeros"
    if len(span_id) != 8:
        return "invalid_span_id", f"span_id must be 8 bytes, got {len(span_id)}"
    if span_id == _ZERO_SPAN:
        return "invalid_span_id", "span_id must not be all zeros"
    if parent and len(parent) != 8:
        return "invalid_parent_span_id", f"parent_span_id must be empty or 8 bytes, got {len(parent)}"
    return None


def _log_problem(record: Any) -> tuple[str, str] | None:
    trace_id, span_id = record.trace_id, record.span_id
    if trace_id and len(trace_id) != 16:
        return "invalid_trace_id", f"trace_id must be empty or 16 bytes, got {len(trace_id)}"
    if span_id and len(span_id) != 8:
        return "invalid_span_id", f"span_id must be empty or 8 bytes, got {len(span_id)}"
    return None


Problem = Callable[[Any], tuple[str, str] | None]
Found = list[tuple[Any, int, tuple[str, str]]]


def _scan(items: Any, problem: Problem, found: Found) -> None:
    # The fast loop reads the ids inline; _span_problem / _log_problem only run for an item already known bad.
    for index, item in enumerate(items):
        why = problem(item)
        if why is not None:
            found.append((items, index, why))


def _first_bad_span(spans: Any) -> int:
    """Index of the first span with a bad id, or -1. Inlined checks: this is the per-span hot path."""
    zero_trace, zero_span = _ZERO_TRACE, _ZERO_SPAN
    for index, span in enumerate(spans):
        trace_id = span.trace_id
        span_id = span.span_id
        if len(trace_id) != 16 or len(span_id) != 8 or trace_id == zero_trace or span_id == zero_span:
            return index
        parent = span.parent_span_id
        if parent and len(parent) != 8:
            return index
    return -1


def _first_bad_log(records: Any) -> int:
    for index, record in enumerate(records):
        trace_id = record.trace_id
        span_id = record.span_id
        if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
            return index
    return -1


def _shadow_class(item: str, fields: tuple[tuple[str, int], ...]) -> type[Message]:
    """A request type that reads only the ids from OTLP wire bytes, with every span (log record) of every
    resource and scope in one list.

    The envelope fields (``resource_spans``, ``scope_spans``) are declared singular, and protobuf merges
    repeated occurrences of a singular message field, concatenating their lists: so all items land in one
    repeated field, each item still one element whose id fields are singular (last occurrence wins, exactly
    as in the real parse). Everything else is an unknown field, skipped without being decoded.
    """
    label = descriptor_pb2.FieldDescriptorProto
    package = f"otelgw.idcheck.{item}"
    file = descriptor_pb2.FileDescriptorProto(name=f"otelgw_idcheck_{item}.proto", package=package,
                                              syntax="proto3")
    record = file.message_type.add(name="Item")
    for name, number in fields:
        record.field.add(name=name, number=number, type=label.TYPE_BYTES, label=label.LABEL_OPTIONAL)
    for name, child, number, child_label in (("Scope", "Item", 2, label.LABEL_REPEATED),
                                             ("Resource", "Scope", 2, label.LABEL_OPTIONAL),
                                             ("Request", "Resource", 1, label.LABEL_OPTIONAL)):
        file.message_type.add(name=name).field.add(name="items", number=number, type=label.TYPE_MESSAGE,
                                                   label=child_label, type_name=f".{package}.{child}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Request"))


# The shadow serializes canonically: each item is ``0x12 <length>`` then its non-empty ids in field order.
# A pattern per item with its exact length byte keeps the match aligned with the items, so matching the whole
# serialization proves every id of every item the right size without a Python loop over them. All-zero ids
# are looked for with a plain substring search first: one found where no id is (spanning two) only sends the
# request down the item-by-item path, which decides.
_VALID_SPANS = re.compile(rb"(?:\x12(?:\x1c\x0a\x10.{16}\x12\x08.{8}|\x26\x0a\x10.{16}\x12\x08.{8}\x22\x08.{8}))*",
                          re.DOTALL)
_ZERO_SPAN_IDS = (b"\x0a\x10" + _ZERO_TRACE, b"\x12\x08" + _ZERO_SPAN)
_VALID_LOGS = re.compile(rb"(?:\x12(?:\x00|\x12\x4a\x10.{16}|\x0a\x52\x08.{8}|\x1c\x4a\x10.{16}\x52\x08.{8}))*",
                         re.DOTALL)
_SHADOWS: dict[Signal, tuple[type[Message], re.Pattern[bytes], tuple[bytes, ...]]] = {
    Signal.TRACES: (_shadow_class("spans", (("trace_id", 1), ("span_id", 2), ("parent_span_id", 4))),
                    _VALID_SPANS, _ZERO_SPAN_IDS),
    Signal.LOGS: (_shadow_class("logs", (("trace_id", 9), ("span_id", 10))), _VALID_LOGS, ()),
}


def ids_valid(signal: Signal, wire: bytes) -> bool:
    """Whether every item of the serialized request ``wire`` has valid ids, seen from its bytes (metrics: no ids
    to check). False may also mean "could not tell": then ``drop_invalid_ids`` on the parse decides."""
    return signal is Signal.METRICS or _all_valid(signal, wire)


def _all_valid(signal: Signal, wire: bytes) -> bool:
    if spanscan is not None:  # the same check, in one C walk over the bytes
        try:
            return spanscan.ids_valid(wire, signal is Signal.LOGS)
        except ValueError:  # the real parse of these bytes succeeded; let the item loop decide
            return False
    return _all_valid_python(signal, wire)


def _all_valid_python(signal: Signal, wire: bytes) -> bool:
    """The Python twin of ``spanscan.ids_valid``: a shadow parse and a regular expression, both in C."""
    shadow_type, valid, zeros = _SHADOWS[signal]
    try:
        shadow: Any = shadow_type.FromString(wire)
    except Exception:  # the real parse of these bytes succeeded; let the item loop decide
        return False
    scope = shadow.items.items
    scope.DiscardUnknownFields()
    ids = scope.SerializeToString()
    return valid.fullmatch(ids) is not None and not any(zero in ids for zero in zeros)


def drop_invalid_ids(signal: Signal, batch: Batch, wire: bytes | None = None) -> Rejection | None:
    """Remove the items of ``batch`` whose ids break the OTLP rules; None (and ``batch`` untouched) if none do.

    ``wire``: the protobuf bytes ``batch`` was parsed from, if any. With them, a valid request is recognised
    in C (:func:`_all_valid`); only a request that fails that check, or one without bytes (JSON), is looked at
    item by item.
    """
    if signal is Signal.METRICS:
        return None  # metric data points carry no ids of their own
    if wire is not None and ids_valid(signal, wire):
        return None
    if signal is Signal.TRACES:
        groups = [ss.spans for rs in batch.resource_spans for ss in rs.scope_spans]  # type: ignore[union-attr]
        first_bad: Callable[[Any], int] = _first_bad_span
        problem: Problem = _span_problem
        item = "span"
    else:
        groups = [sl.log_records for rl in batch.resource_logs for sl in rl.scope_logs]  # type: ignore[union-attr]
        first_bad, problem, item = _first_bad_log, _log_problem, "log record"
    found: Found = []
    for items in groups:
        if first_bad(items) >= 0:
            _scan(items, problem, found)
    if not found:
        return None
    reasons = Counter(why[0] for _, _, why in found)
    first = found[0][2][1]
    for items, index, _ in reversed(found):  # back to front, so earlier indexes stay valid
        del items[index]
    count = len(found)
    others = f"; {count - 1} more with invalid ids" if count > 1 else ""
    message = f"{count} {item}{'s' if count > 1 else ''} rejected: {first}{others}"
    return Rejection(count, dict(reasons), message)
