"""A request's items as their own bytes, from its wire format (plugins/processors/redaction/items.py).

Each test runs on both twins: ``split`` (the C walk when the extension is built) and ``split_python`` (the item
view).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import Signal
from gateway.helpers import native
from gateway.testing import make_metrics
from plugins.processors.redaction.items import Items, metric_points, split, split_python

TWINS = [pytest.param(split, id="c", marks=pytest.mark.skipif(native.spanscan is None, reason="not built")),
         pytest.param(split_python, id="python")]
Split = Callable[[bytes, Signal, Any], Items]


def envelope_text(items: Items) -> bytes:
    """What the scanner sees outside the items: the envelope content (C) or the envelope parts (view)."""
    text = items.text
    for index in reversed(range(items.count)):  # cut every item out; what is left is envelope and framing
        item = items.item(index)
        at = text.rfind(item) if item else -1
        if at >= 0:
            text = text[:at] + b"|" + text[at + len(item):]
    return text


def request(shape: list[list[int]]) -> ExportTraceServiceRequest:
    """shape[i][j] = number of spans in scope j of resource i; span names say where they are."""
    out = ExportTraceServiceRequest()
    for i, scopes in enumerate(shape):
        rs = out.resource_spans.add()
        rs.resource.attributes.add(key="service.name", value={"string_value": f"svc-{i}"})
        for j, count in enumerate(scopes):
            ss = rs.scope_spans.add()
            ss.scope.name = f"scope-{i}-{j}"
            for k in range(count):
                ss.spans.add(name=f"span-{i}-{j}-{k}", trace_id=bytes(16), span_id=bytes(8))
    return out


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, as a sender may write it (any order, anything between)."""
    assert len(payload) < 128 * 128
    length = bytes([len(payload)]) if len(payload) < 128 else bytes([len(payload) & 0x7F | 0x80, len(payload) >> 7])
    return bytes([number << 3 | 2]) + length + payload


@pytest.mark.parametrize("twin", TWINS)
@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=3), min_size=0, max_size=3))
def test_items_come_in_request_order_with_their_addresses(twin: Split, shape: list[list[int]]) -> None:
    batch = request(shape)
    items = twin(batch.SerializeToString(), Signal.TRACES, batch)
    expected = [(i, j, k) for i, scopes in enumerate(shape) for j, count in enumerate(scopes) for k in range(count)]
    assert items.count == len(expected)
    for index, (i, j, k) in enumerate(expected):
        assert items.address(index) == (i, j, k)
        assert items.item(index) == batch.resource_spans[i].scope_spans[j].spans[k].SerializeToString()
    envelope = envelope_text(items)
    assert all(f"scope-{i}-{j}".encode() in envelope for i, j, _ in expected)
    assert b"span-" not in envelope


@pytest.mark.parametrize("twin", TWINS)
def test_items_follow_the_parser_whatever_the_encoding(twin: Split) -> None:
    """Unknown fields between items, a field-2 occurrence with another wire type (an unknown field to the
    parser, so no item) and the scope after the spans: the items are still those of the parsed batch."""
    batch = request([[2]])
    rs = batch.resource_spans[0]
    spans = [span.SerializeToString() for span in rs.scope_spans[0].spans]
    scope = rs.scope_spans[0].scope.SerializeToString()
    scope_spans = (bytes([9 << 3, 5]) + field(2, spans[0]) + bytes([2 << 3, 1]) + field(2, spans[1])
                   + field(1, scope) + field(7, b"unknown text"))
    data = field(1, field(1, rs.resource.SerializeToString()) + field(2, scope_spans))
    parsed = ExportTraceServiceRequest.FromString(data)
    items = twin(data, Signal.TRACES, parsed)
    assert [items.item(index) for index in range(items.count)] == spans
    assert b"unknown text" in envelope_text(items)


@pytest.mark.parametrize("twin", TWINS)
def test_log_records_and_metric_points(twin: Split) -> None:
    logs = ExportLogsServiceRequest()
    records = logs.resource_logs.add().scope_logs.add().log_records
    for i in range(3):
        records.add().body.string_value = f"record {i}"
    items = twin(logs.SerializeToString(), Signal.LOGS, logs)
    assert [items.item(index) for index in range(items.count)] == [record.SerializeToString() for record in records]

    metrics = make_metrics()
    expected = [point.SerializeToString() for rm in metrics.resource_metrics for sm in rm.scope_metrics
                for metric in sm.metrics for point in getattr(metric, metric.WhichOneof("data")).data_points]
    assert expected and list(metric_points(metrics.SerializeToString())) == expected


def test_a_metric_with_two_data_fields_has_the_points_of_the_last_one() -> None:
    """A sender may write two members of Metric's ``data`` oneof; OTLP keeps the last, and so must the view."""
    metrics = make_metrics()
    point = field(1, b"\x31" + bytes(8))  # Gauge.data_points: a NumberDataPoint with as_int (field 6) = 0
    metric = field(1, b"two.kinds") + field(5, point + point) + field(11, field(1, b""))
    data = metrics.SerializeToString() + field(1, field(2, field(2, metric)))
    parsed = type(metrics).FromString(data)
    last = parsed.resource_metrics[-1].scope_metrics[0].metrics[0]
    assert last.WhichOneof("data") == "summary" and len(last.summary.data_points) == 1
    points = [p.SerializeToString() for rm in parsed.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics for p in getattr(m, m.WhichOneof("data")).data_points]
    assert list(metric_points(data)) == points


def test_a_group_encoded_unknown_field_goes_to_the_view() -> None:
    """upb keeps a group (wire types 3 and 4) as an unknown field; the C walk refuses it, so ``split`` takes the
    item view for that request instead of failing."""
    batch = request([[2]])
    data = batch.SerializeToString() + b"\x7b\x08\x01\x7c"  # field 15 as a group holding one varint
    parsed = ExportTraceServiceRequest.FromString(data)
    items = split(data, Signal.TRACES, parsed)
    assert [items.item(index) for index in range(items.count)] == [
        span.SerializeToString() for span in batch.resource_spans[0].scope_spans[0].spans]
    assert isinstance(items, type(split_python(data, Signal.TRACES, parsed)))
