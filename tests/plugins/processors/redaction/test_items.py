"""The wire walk from hits on a request's bytes to the items they fall in (plugins/processors/redaction/items.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from plugins.processors.redaction.items import locate_items

PATH = (1, 2, 2)


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
                span = ss.spans.add(name=f"span-{i}-{j}-{k}", trace_id=bytes(16), span_id=bytes(8))
                span.attributes.add(key="filler", value={"string_value": "x" * (30 + 60 * k % 200)})
    return out


def hit_on(data: bytes, text: bytes, mask: int = 2) -> tuple[int, int, int]:
    start = data.index(text)
    return start, start + len(text) - 1, mask


def test_hits_name_their_items_by_indexes_with_ranges_inside_the_item() -> None:
    batch = request([[3, 2], [0, 200]])
    data = batch.SerializeToString()
    located = locate_items(data, [hit_on(data, b"span-1-1-150", 4), hit_on(data, b"span-0-0-1")], PATH)
    assert set(located.items) == {(0, 0, 1), (1, 1, 150)} and not located.outside
    item = located.items[(1, 1, 150)]
    assert item.mask == 4 and item.data == batch.resource_spans[1].scope_spans[1].spans[150].SerializeToString()
    (start, end), = item.ranges
    assert item.data[start:end] == b"span-1-1-150"


def test_hits_outside_every_item_are_reported() -> None:
    data = request([[1]]).SerializeToString()
    assert locate_items(data, [hit_on(data, b"svc-0")], PATH).outside
    assert locate_items(data, [hit_on(data, b"scope-0-0")], PATH).outside
    assert not locate_items(data, [], PATH).outside


def test_a_hit_across_two_items_names_both() -> None:
    data = request([[2]]).SerializeToString()
    first = data.index(b"span-0-0-0")
    second = data.index(b"span-0-0-1")
    assert set(locate_items(data, [(first, second, 2)], PATH).items) == {(0, 0, 0), (0, 0, 1)}


def test_indexes_follow_the_parser_whatever_the_encoding() -> None:
    """Unknown fields between elements, and a path field number with another wire type, as a sender may write
    them: the parser keeps the latter as an unknown field, so it is no element."""
    batch = request([[2]])
    rs = batch.resource_spans[0]
    ss_bytes = rs.scope_spans[0].SerializeToString()
    spans = [span.SerializeToString() for span in rs.scope_spans[0].spans]

    def field(number: int, payload: bytes) -> bytes:
        assert len(payload) < 128 * 128
        length = bytes([len(payload)]) if len(payload) < 128 else bytes([len(payload) & 0x7F | 0x80,
                                                                        len(payload) >> 7])
        return bytes([number << 3 | 2]) + length + payload

    # scope_spans: scope, then an unknown varint field 9, then spans with a varint "field 2" between them
    ss_bytes = (field(1, rs.scope_spans[0].scope.SerializeToString()) + bytes([9 << 3, 5])
                + field(2, spans[0]) + bytes([2 << 3, 1]) + field(2, spans[1]))
    data = field(1, field(1, rs.resource.SerializeToString()) + field(2, ss_bytes))
    parsed = ExportTraceServiceRequest.FromString(data)
    assert [s.name for s in parsed.resource_spans[0].scope_spans[0].spans] == ["span-0-0-0", "span-0-0-1"]
    located = locate_items(data, [hit_on(data, b"span-0-0-1")], PATH)
    assert set(located.items) == {(0, 0, 1)}


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=3), min_size=1, max_size=3),
       picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 3)), min_size=1, max_size=8))
def test_every_span_name_hit_is_mapped_to_that_span(shape: list[list[int]], picks: list[tuple[int, int]]) -> None:
    batch = request(shape)
    data = batch.SerializeToString()
    where = [(i, j, k) for i, scopes in enumerate(shape) for j, count in enumerate(scopes) for k in range(count)]
    if not where:
        return
    chosen = {where[pick % len(where)] for pick, _ in picks}
    hits = [hit_on(data, f"span-{i}-{j}-{k}".encode() + b"\x4a", 2) for i, j, k in chosen]  # name, then attrs
    located = locate_items(data, hits, PATH)
    assert set(located.items) == chosen
    for (i, j, k), item in located.items.items():
        assert item.data == batch.resource_spans[i].scope_spans[j].spans[k].SerializeToString()
