"""The C twins in ``gateway.helpers._spanscan`` against their Python references, on the same bytes.

Each C function must give exactly what its Python twin gives (the twin is what runs without the extension), and
bytes that are not well-formed protobuf must raise ValueError, never crash or read past the buffer.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from bisect import bisect_left
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway import Signal
from gateway.helpers import native
from gateway.helpers.trace_runs import split_request_python, stamp_python
from plugins.processors.tail_sampling.policies.probabilistic import fnv1a_64_python
from plugins.receivers.otlp.ids import _all_valid_python, _log_problem, _span_problem
from tests.plugins.processors.redaction.generators import EMAIL, field, item_bytes, wire_requests

spanscan = native.spanscan
pytestmark = pytest.mark.skipif(spanscan is None, reason="the C extension is not built here")

U64 = st.integers(min_value=0, max_value=2**64 - 1)
NAMES = st.sampled_from(["GET /a", "GET /b", "db.query", "", "zz", "ünïcode", "x" * 300])


@st.composite
def spans(draw: Any) -> Span:
    span = Span(name=draw(NAMES), kind=draw(st.sampled_from([0, 1, 2, 3, 4, 5, 9, -1])))
    trace = draw(st.sampled_from([None, b"\x01" * 16, b"\x02" * 16, b"\x03" * 16, b"\x04" * 8, bytes(16)]))
    if trace is not None:
        span.trace_id = trace
    span.span_id = draw(st.binary(min_size=0, max_size=8))
    if draw(st.booleans()):
        span.parent_span_id = draw(st.sampled_from([b"\x09" * 8, b"\x00" * 8]))
    if draw(st.booleans()):
        span.start_time_unix_nano = draw(U64)
    if draw(st.booleans()):
        span.end_time_unix_nano = draw(U64)
    status = draw(st.sampled_from([None, 0, 1, 2, 7, -3]))
    if status is not None:
        span.status.CopyFrom(Status(code=status, message=draw(st.sampled_from(["", "boom"]))))
    for key in draw(st.lists(st.sampled_from(["a", "b", "http.status_code"]), max_size=3)):
        span.attributes.append(KeyValue(key=key, value=AnyValue(int_value=draw(st.integers(-5, 2**40)))))
    return span


@st.composite
def requests(draw: Any) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        resource = request.resource_spans.add()
        if draw(st.booleans()):
            resource.resource.attributes.append(
                KeyValue(key="service.name", value=AnyValue(string_value=draw(st.sampled_from(["a", "b"])))))
        if draw(st.booleans()):
            resource.schema_url = "https://opentelemetry.io/schemas/1.21.0"
        for _ in range(draw(st.integers(0, 3))):
            scope = resource.scope_spans.add()
            scope.scope.name = draw(st.sampled_from(["", "lib", "other"]))
            scope.spans.extend(draw(st.lists(spans(), max_size=12)))
    return request


def with_padding(data: bytes, draw_empty_span: bool) -> bytes:
    """Adds what a parser accepts but no serializer writes: an empty span, an unknown field in a scope."""
    if not draw_empty_span:
        return data
    return data + b"\x0a\x04\x12\x02\x12\x00"  # a resource holding a scope holding one empty span


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_split_request_gives_what_the_python_twin_gives(request: ExportTraceServiceRequest, want_times: bool,
                                                          want_root: bool, want_status: bool, padded: bool) -> None:
    data = with_padding(request.SerializeToString(), padded)
    parsed = ExportTraceServiceRequest.FromString(data)
    assert spanscan.split_request(data, want_times, want_root, want_status) == split_request_python(
        data, parsed, want_times, want_root, want_status)


def groups_python(request: ExportTraceServiceRequest, read_status: bool) -> list[list[list[Any]]]:
    """What span_groups must give, computed from the parsed request."""
    out = []
    for rs in request.resource_spans:
        scopes = []
        for ss in rs.scope_spans:
            groups: dict[tuple[str, int, int], list[int]] = {}
            for span in ss.spans:
                code = span.status.code if read_status and span.HasField("status") else 0
                groups.setdefault((span.name, span.kind, code), []).append(
                    span.end_time_unix_nano - span.start_time_unix_nano)
            scopes.append([(name, kind, code, durations) for (name, kind, code), durations in groups.items()])
        out.append(scopes)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.booleans(), st.booleans())
def test_span_groups_gives_what_a_parse_gives(request: ExportTraceServiceRequest, read_status: bool,
                                              padded: bool) -> None:
    data = with_padding(request.SerializeToString(), padded)
    assert spanscan.span_groups(data, read_status) == groups_python(ExportTraceServiceRequest.FromString(data),
                                                                   read_status)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_ids_valid_is_true_exactly_when_no_span_has_a_bad_id(request: ExportTraceServiceRequest) -> None:
    data = request.SerializeToString()
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    valid = all(_span_problem(span) is None for span in spans)
    assert spanscan.ids_valid(data) is valid
    if _all_valid_python(Signal.TRACES, data):  # the twin may send a valid request down the item path, no more
        assert valid


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"", b"\x01" * 16, b"\x02" * 8, bytes(16)]),
                          st.sampled_from([b"", b"\x01" * 8, b"\x01" * 16, bytes(8)])), max_size=8),
       st.integers(1, 3))
def test_ids_valid_for_log_records(ids: list[tuple[bytes, bytes]], scopes: int) -> None:
    request = ExportLogsServiceRequest()
    resource = request.resource_logs.add()
    for _ in range(scopes):
        resource.scope_logs.add().log_records.extend(
            LogRecord(trace_id=trace, span_id=span, body={"string_value": "x"}) for trace, span in ids)
    valid = all(_log_problem(record) is None for sl in resource.scope_logs for record in sl.log_records)
    assert spanscan.ids_valid(request.SerializeToString(), True) is valid
    assert _all_valid_python(Signal.LOGS, request.SerializeToString()) is valid


@given(st.binary(max_size=64), st.integers(0, 2**64 - 1))
def test_fnv1a_64_is_its_python_twin(data: bytes, state: int) -> None:
    assert spanscan.fnv1a_64(data, state) == fnv1a_64_python(data, state)
    assert spanscan.fnv1a_64(data) == fnv1a_64_python(data)


BOUNDS = (2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 250.0, 1000.0, 15000.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-10**6, 10**11), st.sampled_from([b * 10**6 for b in (2, 4, 100)]),
                          st.integers(-2**64, 2**64)), max_size=60),
       st.sampled_from([1e6, 1e9]), st.floats(0, 1e6))
def test_count_durations_counts_and_adds_as_the_loop_one_value_at_a_time(diffs: list[int], divider: float,
                                                                         total: float) -> None:
    counts, expected = [3] * (len(BOUNDS) + 1), [3] * (len(BOUNDS) + 1)
    expected_total = total
    for diff in diffs:  # span_metrics' loop
        value = diff / divider if diff > 0 else 0.0
        expected[bisect_left(BOUNDS, value)] += 1
        expected_total += value
    result = spanscan.count_durations(counts, BOUNDS, diffs, divider, total)
    assert counts == expected
    assert result == expected_total and str(result) == str(expected_total)  # the same double to the last bit


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.binary(max_size=40))
def test_stamp_gives_what_the_python_twin_gives(request: ExportTraceServiceRequest, suffix: bytes) -> None:
    for _, _, scope_runs in spanscan.split_request(request.SerializeToString()):
        for run in scope_runs:
            assert spanscan.stamp(run[1], suffix) == stamp_python(run[1], suffix)


def test_a_repeated_scalar_takes_its_last_value_and_a_repeated_status_merges() -> None:
    """As a parse: two encodings of name, kind and times, the last wins; two status fields merge (a later one
    without a code keeps the earlier code)."""
    first = Span(name="old", kind=1, start_time_unix_nano=5, end_time_unix_nano=9, status=Status(code=2))
    second = Span(name="new", kind=3, start_time_unix_nano=10, end_time_unix_nano=40, status=Status(message="m"))
    body = first.SerializeToString() + second.SerializeToString()
    span = b"\x12" + bytes([len(body)]) + body
    scope = b"\x12" + bytes([len(span)]) + span
    data = b"\x0a" + bytes([len(scope)]) + scope
    assert spanscan.span_groups(data) == groups_python(ExportTraceServiceRequest.FromString(data), True)
    assert spanscan.span_groups(data) == [[[("new", 3, 2, [30])]]]


def test_bytes_that_are_not_protobuf_raise_value_error() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.extend(Span(trace_id=bytes([i]) * 16, name=f"s{i}", start_time_unix_nano=i) for i in range(1, 5))
    data = request.SerializeToString()
    calls = (lambda d: spanscan.split_request(d, True, True), spanscan.span_groups, spanscan.ids_valid,
             lambda d: spanscan.stamp(d, b"x"))
    for cut in range(1, len(data)):  # every truncation: a length past the end somewhere
        for call in calls:
            try:
                call(data[:cut])
            except ValueError as exc:
                assert "malformed protobuf" in str(exc)
    for garbage in (b"\xff" * 20, b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0f", b"\x0a\x05\x12\x03\x12"):
        with pytest.raises(ValueError, match="malformed protobuf"):
            spanscan.span_groups(garbage)
        with pytest.raises(ValueError, match="malformed protobuf"):
            spanscan.split_request(garbage, True, True)
        with pytest.raises(ValueError, match="malformed protobuf"):
            spanscan.ids_valid(garbage)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    for call in (lambda d: spanscan.split_request(d, True, True), spanscan.span_groups, spanscan.ids_valid,
                 lambda d: spanscan.stamp(d, b"x")):
        with contextlib.suppress(ValueError):
            call(data)


def test_a_name_that_is_not_utf8_is_an_error_the_caller_can_take() -> None:
    span = Span(name="x").SerializeToString().replace(b"x", b"\xff")
    scope = b"\x12" + bytes([len(span)]) + span
    data = b"\x0a" + bytes([len(scope) + 2]) + b"\x12" + bytes([len(scope)]) + scope
    with pytest.raises(ValueError):
        spanscan.span_groups(data)


def test_the_environment_switch_turns_the_c_twins_off() -> None:
    code = "from gateway.helpers import native; print(native.spanscan is None)"
    for value, off in (("1", "True"), ("0", "False"), ("", "False")):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OTELGW_PURE_PYTHON": value},
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == off


# ---------------------------------------------------------------------------------------------------- redaction
# request_items and splice_items against redaction's item view (plugins/processors/redaction/items.py), on
# requests written field by field as a sender may: envelopes holding an address, unknown fields at every level,
# repeated and present-but-empty envelopes, empty items, any field order (``wire_requests``).

def reference_items(data: bytes) -> tuple[list[int], list[int], list[tuple[int, int, int]]]:
    """What request_items must give, by a plain walk in Python."""
    items: list[int] = []
    envelope_ranges: list[int] = []
    scopes: list[tuple[int, int, int]] = []

    def read(pos: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if byte < 0x80:
                return value, pos

    def walk(start: int, end: int, level: int, resource: int) -> None:
        index, pos = 0, start
        while pos < end:
            tag, body = read(pos)
            if tag & 7 == 2:
                length, body = read(body)
                field_end = body + length
            elif tag & 7 == 0:
                field_end = read(body)[1]
            else:
                field_end = body + (8 if tag & 7 == 1 else 4)
            if tag != (0x0A if level == 0 else 0x12):
                if envelope_ranges and envelope_ranges[-1] == pos:
                    envelope_ranges[-1] = field_end
                else:
                    envelope_ranges.extend((pos, field_end))
            elif level == 2:
                items.extend((body, field_end))
            else:
                if level == 1:
                    scopes.append((len(items) // 2, resource, index))
                walk(body, field_end, level + 1, index)
                index += 1
            pos = field_end

    walk(0, len(data), 0, 0)
    return items, envelope_ranges, scopes


def _parse(data: bytes, logs: bool) -> Any:
    return (ExportLogsServiceRequest if logs else ExportTraceServiceRequest).FromString(data)


def _items_of(batch: Any, logs: bool) -> list[Any]:
    if logs:
        return [r for rl in batch.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    return [s for rs in batch.resource_spans for ss in rs.scope_spans for s in ss.spans]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_request_items_gives_the_items_of_the_view_and_every_envelope_byte(data: Any, logs: bool) -> None:
    from plugins.processors.redaction.items import split_python

    request = data.draw(wire_requests(logs))
    signal = Signal.LOGS if logs else Signal.TRACES
    bounds, envelope_ranges, scopes = spanscan.request_items(request)
    assert (bounds, envelope_ranges, scopes) == reference_items(request)
    view = split_python(request, signal, _parse(request, logs))
    assert [request[bounds[i]:bounds[i + 1]] for i in range(0, len(bounds), 2)] == view.parts[:view.count]
    assert [first for first, _, _ in scopes] == view.starts and [(i, j) for _, i, j in scopes] == view.scopes
    # The envelope content holds every envelope text, and with the items it covers all but the framing.
    content = b"|".join(request[a:b] for a, b in zip(envelope_ranges[::2], envelope_ranges[1::2], strict=True))
    for part in view.parts[view.count:]:
        for text in (b"unknown text", EMAIL.encode(), b"https://schema/", b"service.name", b"lib"):
            assert text not in part or text in content
    covered = sum(b - a for a, b in zip(bounds[::2], bounds[1::2], strict=True))
    covered += sum(b - a for a, b in zip(envelope_ranges[::2], envelope_ranges[1::2], strict=True))
    containers = len(bounds) // 2 + len(scopes)
    assert len(request) - covered >= 2 * containers  # each item and scope has at least a tag and a length


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_hits_land_on_the_same_items_as_in_the_view(data: Any, logs: bool) -> None:
    """The scanner on the request's bytes (C) and on the view's parts joined (Python) flags the same items, with
    the same ranges in them, and sees an address in the envelopes in both or neither."""
    from plugins.processors.redaction.config import Config
    from plugins.processors.redaction.items import _WireItems, split_python
    from plugins.processors.redaction.rules import RuleSet

    scanner = RuleSet(Config(detectors=["email"])).scanner
    assert scanner is not None
    request = data.draw(wire_requests(logs))
    wire = _WireItems(request)
    view = split_python(request, Signal.LOGS if logs else Signal.TRACES, _parse(request, logs))
    (c_hits, c_envelope), (p_hits, p_envelope) = (items.locate(scanner.find(items.text)) for items in (wire, view))
    assert {i: (h.mask, sorted(h.ranges)) for i, h in c_hits.items()} == {
        i: (h.mask, sorted(h.ranges)) for i, h in p_hits.items()}
    assert c_envelope == p_envelope
    assert set(c_hits) == {i for i in range(wire.count) if EMAIL.encode() in wire.item(i)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_splice_items_parses_to_the_batch_with_the_changed_items(data: Any, logs: bool) -> None:
    from plugins.processors.redaction.items import splice_python, split_python

    request = data.draw(wire_requests(logs))
    count = len(spanscan.request_items(request)[0]) // 2
    chosen = data.draw(st.sets(st.integers(0, count - 1), max_size=count)) if count else set()
    changed = {index: data.draw(item_bytes(logs)) for index in sorted(chosen)}
    spliced = spanscan.splice_items(request, sorted(changed.items()))
    expected = _parse(request, logs)
    for index, item in zip(range(count), _items_of(expected, logs), strict=True):
        if index in changed:
            item.Clear()
            item.MergeFromString(changed[index])
    assert _parse(spliced, logs) == expected
    assert spanscan.splice_items(request, []) == request
    # Where the view's splice is exact too and the request canonical, both give the same bytes.
    signal = Signal.LOGS if logs else Signal.TRACES
    view = split_python(request, signal, _parse(request, logs))
    if view.exact and _parse(request, logs).SerializeToString() == request:
        assert splice_python(request, signal, view, changed) == spliced


def test_a_long_item_gets_a_longer_length_in_every_container() -> None:
    scope = field(2, field(2, Span(name="a").SerializeToString()) + field(1, field(1, b"lib")))
    request = field(1, field(1, b"") + scope) + field(1, scope)
    long = Span(name="b" * 300).SerializeToString()
    spliced = spanscan.splice_items(request, [(0, long), (1, b"")])
    parsed = ExportTraceServiceRequest.FromString(spliced)
    assert [[[s.name for s in ss.spans] for ss in rs.scope_spans] for rs in parsed.resource_spans] == [
        [["b" * 300]], [[""]]]
    assert parsed.resource_spans[0].HasField("resource")  # present but empty, as it came
    assert spliced.endswith(field(1, field(2, field(2, b"") + field(1, field(1, b"lib")))))


def test_redaction_walks_refuse_bad_bytes_and_bad_changes() -> None:
    request = field(1, field(2, field(2, Span(name="a").SerializeToString()) * 3))
    for cut in range(1, len(request)):  # every truncation: a length past the end somewhere
        with contextlib.suppress(ValueError):
            spanscan.request_items(request[:cut])
        with contextlib.suppress(ValueError):
            spanscan.splice_items(request[:cut], [(0, b"x")])
    for garbage in (b"\xff" * 20, b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0f", b"\x0a\x05\x12\x03\x12",
                    b"\x0a\x02\x12\x05"):
        with pytest.raises(ValueError, match="malformed protobuf"):
            spanscan.request_items(garbage)
        with pytest.raises(ValueError, match="malformed protobuf"):
            spanscan.splice_items(garbage, [(0, b"")])
    with pytest.raises(ValueError, match="no item at index 3"):
        spanscan.splice_items(request, [(3, b"")])
    with pytest.raises(ValueError, match="ascending"):
        spanscan.splice_items(request, [(1, b""), (0, b"")])
    with pytest.raises(TypeError):
        spanscan.splice_items(request, [(0, "text")])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=4)), max_size=3))
def test_redaction_walks_never_crash_on_random_bytes(data: bytes, changes: list[tuple[int, bytes]]) -> None:
    with contextlib.suppress(ValueError):
        spanscan.request_items(data)
    with contextlib.suppress(ValueError):
        spanscan.splice_items(data, sorted(dict(changes).items()))


def test_a_build_left_over_from_an_older_source_is_not_used() -> None:
    """The module is used only when its VERSION is the one the Python code calls (native.VERSION); a stale build
    (a function missing, another signature) would fail in the middle of a request instead."""
    assert spanscan.VERSION == native.VERSION
    code = ("import sys, types; stale = types.ModuleType('gateway.helpers._spanscan'); stale.VERSION = -1; "
            "sys.modules['gateway.helpers._spanscan'] = stale; "
            "from gateway.helpers import native; print(native.spanscan is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True"
