"""The id check itself: the quick proof from wire bytes agrees with the item-by-item check on every request,
including hand-made wire that a real encoder would not produce (repeated fields, ids spanning items)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import Signal, count_items
from gateway.testing import make_logs, make_traces
from plugins.receivers.otlp.ids import _all_valid, drop_invalid_ids

ids = st.one_of(st.just(b""), st.just(bytes(8)), st.just(bytes(16)), st.binary(min_size=0, max_size=20),
                st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16))


def both_ways(signal: Signal, wire: bytes) -> tuple[object, object]:
    parse = signal.request_type.FromString
    fast_batch, slow_batch = parse(wire), parse(wire)
    fast = drop_invalid_ids(signal, fast_batch, wire)
    slow = drop_invalid_ids(signal, slow_batch)
    assert fast_batch == slow_batch
    return fast, slow


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ids, ids, ids), min_size=1, max_size=6), st.integers(1, 3))
def test_the_wire_proof_agrees_with_the_item_check_on_spans(span_ids, scopes):
    batch = ExportTraceServiceRequest()
    for i, (trace_id, span_id, parent) in enumerate(span_ids):
        resource = batch.resource_spans[-1] if i % 2 and batch.resource_spans else batch.resource_spans.add()
        scope = resource.scope_spans.add() if i % scopes == 0 or not resource.scope_spans else resource.scope_spans[-1]
        span = scope.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=f"s{i}")
        span.attributes.add(key="k").value.string_value = "v"
    fast, slow = both_ways(Signal.TRACES, batch.SerializeToString())
    assert fast == slow


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=6))
def test_the_wire_proof_agrees_with_the_item_check_on_log_records(record_ids):
    batch = ExportLogsServiceRequest()
    scope = batch.resource_logs.add().scope_logs.add()
    for trace_id, span_id in record_ids:
        scope.log_records.add(trace_id=trace_id, span_id=span_id, severity_text="INFO")
    fast, slow = both_ways(Signal.LOGS, batch.SerializeToString())
    assert fast == slow


def _field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_a_repeated_id_field_cannot_cover_for_a_span_without_one():
    good = _field(1, b"\x01" * 16) + _field(2, b"\x02" * 8)
    doubled = _field(1, b"\x03" * 16) + _field(1, b"\x04" * 16) + _field(2, b"\x05" * 8)  # last one wins
    missing = _field(2, b"\x06" * 8)  # no trace_id at all
    wire = _field(1, _field(2, _field(2, good) + _field(2, doubled) + _field(2, missing)))
    fast, slow = both_ways(Signal.TRACES, wire)
    assert fast == slow
    assert fast is not None and fast.count == 1 and "trace_id must be 16 bytes, got 0" in fast.message


def test_a_zero_id_is_caught_and_zeros_spanning_two_ids_are_not_mistaken_for_one():
    batch = make_traces(2)
    spans = batch.resource_spans[0].scope_spans[0].spans
    spans[0].span_id = b"\x01" + bytes(7)
    spans[1].trace_id = bytes(8) + b"\x01" * 8
    assert both_ways(Signal.TRACES, batch.SerializeToString()) == (None, None)
    spans[1].trace_id = bytes(16)
    fast, slow = both_ways(Signal.TRACES, batch.SerializeToString())
    assert fast == slow and fast is not None and fast.count == 1


@pytest.mark.parametrize("signal", [Signal.TRACES, Signal.LOGS])
def test_valid_requests_are_left_alone(signal):
    batch = make_traces(50) if signal is Signal.TRACES else make_logs(50)
    if signal is Signal.LOGS:
        for record in batch.resource_logs[0].scope_logs[0].log_records[::2]:
            record.trace_id, record.span_id = random.randbytes(16), random.randbytes(8)
    wire = batch.SerializeToString()
    assert _all_valid(signal, wire)  # proven without the item loop
    assert drop_invalid_ids(signal, batch, wire) is None
    assert count_items(signal, batch) == 50 and batch.SerializeToString() == wire
