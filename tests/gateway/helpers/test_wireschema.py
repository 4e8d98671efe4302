"""``validate`` (C, ``gateway/helpers/_spanscan.c``) and ``check`` (``gateway/helpers/wireschema.py``) against upb.

The reference is upb itself: for every input, ``validate`` must raise exactly when ``FromString`` of the same
bytes raises, and otherwise give ``count_items`` of the parse. The explicit cases pin each rule upb applies (so
a protobuf upgrade that changes one fails here, not in production); the property tests build requests of the
three signals with the real message classes and mutate their bytes (flips, cuts, fields inserted at every level
with every wire type, invalid UTF-8 in every kind of string field, random bytes).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway import Signal, check_request, count_items
from gateway.helpers import native, wireschema
from gateway.helpers.trace_runs import _read_varint

spanscan = native.spanscan
needs_c = pytest.mark.skipif(spanscan is None, reason="the C extension is not built here")
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ERROR_TEXT = re.compile(r"malformed protobuf: .+ at offset \d+$")


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def upb(cls: type[Message], data: bytes) -> Message | None:
    try:
        return cls.FromString(data)
    except Exception:  # DecodeError: the one answer upb has for bad bytes
        return None


def c_validate(cls: type[Message], data: bytes, items: tuple[Any, ...] = ()) -> int | None:
    """validate's answer with a schema of cls: the count, or None for a ValueError (whose text is checked)."""
    assert spanscan is not None
    try:
        return spanscan.validate(data, wireschema.build(cls.DESCRIPTOR, items))
    except ValueError as error:
        assert ERROR_TEXT.match(str(error)), str(error)
        return None


SIGNAL_OF = {ExportTraceServiceRequest: Signal.TRACES, ExportMetricsServiceRequest: Signal.METRICS,
             ExportLogsServiceRequest: Signal.LOGS}


def assert_agrees(signal: Signal, data: bytes) -> None:
    """validate (C, when built) and check_python both answer as upb does, with count_items of the parse."""
    parsed = upb(signal.request_type, data)
    if parsed is None:
        with pytest.raises(ValueError, match=r"^malformed protobuf: "):
            wireschema.check_python(signal, data)
        if spanscan is not None:
            with pytest.raises(ValueError) as raised:
                spanscan.validate(data, wireschema.schema(signal))
            assert ERROR_TEXT.match(str(raised.value)), str(raised.value)
        return
    expected = count_items(signal, parsed)
    count, batch = wireschema.check_python(signal, data)
    assert count == expected
    assert batch is not None and batch.SerializeToString() == parsed.SerializeToString()
    if spanscan is not None:
        assert spanscan.validate(data, wireschema.schema(signal)) == expected


# ------------------------------------------------------------------------------------------------ explicit rules
# (name, message class, bytes, whether upb accepts): each row states what upb does, and validate must agree.

def nested_values(levels: int, inner: bytes = b"") -> bytes:
    """An AnyValue payload with `levels` messages nested below it (ArrayValue, AnyValue, ArrayValue, ...)."""
    data = inner
    for level in range(levels, 0, -1):
        data = ld(5 if level % 2 else 1, data)  # AnyValue.array_value (5), ArrayValue.values (1)
    return data


RULES: list[tuple[str, type[Message], bytes, bool]] = [
    ("empty input", AnyValue, b"", True),
    ("field number 0", AnyValue, b"\x00\x01", False),
    ("field number 0, length-delimited", AnyValue, b"\x02\x00", False),
    ("highest field number", AnyValue, tag(2**29 - 1, 0) + b"\x01", True),
    ("tag of 2^32: field number 2^29", AnyValue, tag(2**29, 0) + b"\x01", False),
    ("tag padded to 5 bytes", AnyValue, b"\xa8\x80\x80\x80\x00\x01", True),
    ("tag padded to 6 bytes", AnyValue, b"\xa8\x80\x80\x80\x80\x00\x01", False),
    ("tag whose 5th byte passes 32 bits", AnyValue, b"\xa8\x80\x80\x80\x10\x01", False),
    ("varint of 10 bytes", AnyValue, b"\x18" + b"\xff" * 9 + b"\x01", True),
    ("varint of 10 bytes, bits past 64 set", AnyValue, b"\x18" + b"\xff" * 9 + b"\x7f", True),
    ("varint of 11 bytes", AnyValue, b"\x18" + b"\xff" * 10 + b"\x01", False),
    ("varint cut short", AnyValue, b"\x18\xff", False),
    ("tag cut short", AnyValue, b"\xff", False),
    ("fixed64 cut short", AnyValue, b"\x21\x00\x00", False),
    ("fixed32 cut short (unknown field)", AnyValue, b"\x7d\x00", False),
    ("wire type 6", AnyValue, b"\x7e\x01", False),
    ("wire type 7", AnyValue, b"\x7f\x01", False),
    ("end-group tag outside a group", AnyValue, b"\x7c", False),
    ("balanced unknown group", AnyValue, b"\x7b\x08\x01\x7c", True),
    ("nested unknown groups", AnyValue, b"\x7b\x83\x01\x84\x01\x7c", True),
    ("group closed by another field's end tag", AnyValue, b"\x7b\x08\x01\x84\x01", False),
    ("group without its end tag", AnyValue, b"\x7b\x08\x01", False),
    ("field number 0 inside a group", AnyValue, b"\x7b\x00\x01\x7c", True),
    ("group of field 0 inside a group", AnyValue, b"\x7b\x03\x04\x7c", True),
    ("end tag of field 0 closing a group", AnyValue, b"\x7b\x04\x7c", False),
    ("tag above 32 bits inside a group", AnyValue, b"\x7b\xf8\xff\xff\xff\x1f\x01\x7c", False),
    ("wire type 6 inside a group", AnyValue, b"\x7b\x7e\x7c", False),
    ("overlong varint inside a group", AnyValue, b"\x7b\x78" + b"\xff" * 10 + b"\x01\x7c", False),
    ("group of the highest field number", AnyValue, b"\xfb\xff\xff\xff\x0f\xfc\xff\xff\xff\x0f", True),
    ("length past the end", AnyValue, b"\x0a\x05ab", False),
    ("huge length", AnyValue, b"\x0a" + varint(2**40), False),
    ("length padded to 5 bytes", AnyValue, b"\x0a\x81\x80\x80\x80\x00a", True),
    ("length padded to 6 bytes", AnyValue, b"\x0a\x81\x80\x80\x80\x80\x00a", False),
    ("length of an unknown field padded to 6 bytes", AnyValue, b"\x7a\x81\x80\x80\x80\x80\x00a", False),
    ("end-group tag inside a submessage", AnyValue, ld(5, b"\x0c"), False),
    ("group crossing its submessage's end", AnyValue, ld(5, b"\x7b") + b"\x7c", False),
    ("message field sent as a varint", ArrayValue, b"\x08\x01", True),
    ("message field sent as a group", ArrayValue, b"\x0b\x0a\x01\xff\x0c", True),
    ("string field sent as a varint", AnyValue, b"\x08\x01", True),
    ("string field as fixed32", AnyValue, b"\x0d\xff\xff\xff\xff", True),
    ("scalar field sent length-delimited", Span, b"\x32\x01\x01", True),
    ("fixed64 field sent as a varint", Span, b"\x38\x01", True),
    ("bytes field with any bytes", Span, b"\x0a\x02\xff\xfe", True),
    ("packed fixed64", HistogramDataPoint, b"\x32\x08" + bytes(8), True),
    ("packed fixed64, empty", HistogramDataPoint, b"\x32\x00", True),
    ("packed fixed64 of 7 bytes", HistogramDataPoint, b"\x32\x07" + bytes(7), False),
    ("packed doubles of 12 bytes", HistogramDataPoint, b"\x3a\x0c" + bytes(12), False),
    ("unpacked fixed64", HistogramDataPoint, b"\x31" + bytes(8) + b"\x31" + bytes(8), True),
    ("repeated fixed64 sent as a varint", HistogramDataPoint, b"\x30\x01", True),
    ("packed varints", ExponentialHistogramDataPoint.Buckets, b"\x12\x03\x01\x02\x03", True),
    ("packed varints, last cut short", ExponentialHistogramDataPoint.Buckets, b"\x12\x02\x01\x82", False),
    ("packed varint of 11 bytes", ExponentialHistogramDataPoint.Buckets, b"\x12\x0b" + b"\xff" * 10 + b"\x01",
     False),
    ("unpacked varints", ExponentialHistogramDataPoint.Buckets, b"\x10\x05\x10\x06", True),
    ("repeated varints sent as fixed64", ExponentialHistogramDataPoint.Buckets, b"\x11" + bytes(8), True),
    ("repeated string not UTF-8", EntityRef, b"\x1a\x01\xff", False),
    ("repeated string sent as a varint", EntityRef, b"\x18\x01", True),
    ("oneof members one after another", AnyValue, b"\x0a\x01a\x10\x01\x2a\x00\x0a\x01b", True),
    (f"{100} messages nested", AnyValue, nested_values(100), True),
    (f"{101} messages nested", AnyValue, nested_values(101), False),
    ("99 messages and a group nested", AnyValue, nested_values(99, b"\x7b\x7c"), True),
    ("100 messages and a group nested", AnyValue, nested_values(100, b"\x7b\x7c"), False),
    ("98 messages and 2 groups nested", AnyValue, nested_values(98, b"\x7b\x7b\x7c\x7c"), True),
    ("99 messages and 2 groups nested", AnyValue, nested_values(99, b"\x7b\x7b\x7c\x7c"), False),
    ("100 groups nested", AnyValue, b"\x7b" * 100 + b"\x7c" * 100, True),
    ("101 groups nested", AnyValue, b"\x7b" * 101 + b"\x7c" * 101, False),
    ("an unknown length-delimited field deeper than 100 is not looked into", AnyValue,
     nested_values(100, b"\x7a\x02\x0a\x00"), True),
]
UTF8 = [("NUL", b"\x00", True), ("2 bytes", b"\xc2\x80", True), ("3 bytes", b"\xe2\x82\xac", True),
        ("U+FFFF", b"\xef\xbf\xbf", True), ("U+10FFFF", b"\xf4\x8f\xbf\xbf", True),
        ("overlong 2 bytes", b"\xc0\xaf", False), ("overlong 3 bytes", b"\xe0\x80\x80", False),
        ("overlong 4 bytes", b"\xf0\x80\x80\x80", False), ("surrogate", b"\xed\xa0\x80", False),
        ("past U+10FFFF", b"\xf4\x90\x80\x80", False), ("F5", b"\xf5\x80\x80\x80", False),
        ("cut short", b"\xe2\x82", False), ("cut short after ASCII", b"abcdefghij\xe2\x82", False),
        ("continuation byte alone", b"\x80", False), ("FF", b"\xff", False),
        ("bad byte after 8 ASCII", b"abcdefgh\xff", False), ("long ASCII", b"a" * 100, True)]
RULES += [(f"string: {name}", AnyValue, ld(1, text), ok) for name, text, ok in UTF8]


@needs_c
@pytest.mark.parametrize(("cls", "data", "accepted"), [(cls, data, ok) for _, cls, data, ok in RULES],
                         ids=[name for name, *_ in RULES])
def test_each_rule_as_upb_applies_it(cls: type[Message], data: bytes, accepted: bool) -> None:
    assert (upb(cls, data) is not None) == accepted  # what upb does: if this fails, upb changed
    assert (c_validate(cls, data) is not None) == accepted


def request_with_value(value: bytes) -> bytes:
    """A traces request with one span whose one attribute has the AnyValue payload given."""
    span = Span(name="s").SerializeToString() + ld(9, ld(1, b"k") + ld(2, value))
    return ld(1, ld(2, ld(2, span)))


@pytest.mark.parametrize("mode", ["c", "python"])
def test_the_depth_limit_at_its_exact_boundary_in_a_request(mode: str) -> None:
    """A kvlist/array bomb in an attribute: the request, resource, scope, span, key-value and value are 5 levels
    above the value's payload, so 95 more nested messages are the most upb takes, 96 too many."""
    if mode == "c" and spanscan is None:
        pytest.skip("the C extension is not built here")
    run = wireschema.check if mode == "c" else wireschema.check_python
    assert upb(ExportTraceServiceRequest, request_with_value(nested_values(95))) is not None
    assert upb(ExportTraceServiceRequest, request_with_value(nested_values(96))) is None
    assert run(Signal.TRACES, request_with_value(nested_values(95)))[0] == 1
    with pytest.raises(ValueError, match="malformed protobuf"):
        run(Signal.TRACES, request_with_value(nested_values(96)))
    # The same bound with kvlists: 31 levels of KeyValueList, KeyValue, AnyValue put the innermost AnyValue 98
    # deep; a KeyValueList and a KeyValue below it reach 100, one more AnyValue is 101.
    for extra, accepted in ((ld(6, ld(1, b"")), True), (ld(6, ld(1, ld(2, b""))), False)):
        value = extra
        for _ in range(31):
            value = ld(6, ld(1, ld(1, b"k") + ld(2, value)))
        data = request_with_value(value)
        assert (upb(ExportTraceServiceRequest, data) is not None) == accepted
        if accepted:
            assert run(Signal.TRACES, data)[0] == 1
        else:
            with pytest.raises(ValueError, match="malformed protobuf"):
                run(Signal.TRACES, data)


@needs_c
def test_the_error_says_what_and_where() -> None:
    data = ld(1, ld(2, ld(2, ld(5, b"ok\xff"))))  # a span name that is not UTF-8
    with pytest.raises(ValueError, match=r"^malformed protobuf: string field that is not valid UTF-8 at offset 8$"):
        wireschema.check(Signal.TRACES, data)
    with pytest.raises(ValueError, match=r"^malformed protobuf: length past the end of its message at offset 1$"):
        wireschema.check(Signal.TRACES, b"\x0a\x05")


def test_empty_input_is_a_valid_request_of_no_items() -> None:
    for signal in Signal:
        assert wireschema.check_python(signal, b"")[0] == 0
        if spanscan is not None:
            assert wireschema.check(signal, b"") == (0, None)


def metric_request(metric: bytes) -> bytes:
    return ld(1, ld(2, ld(2, metric)))


POINTS = {number: ld(1, b"") for number in (5, 7, 9, 10, 11)}  # one data point of each metric type


@pytest.mark.parametrize(("name", "metric"), [
    ("a gauge twice: merged", ld(5, POINTS[5] * 2) + ld(5, POINTS[5])),
    ("gauge then sum: the sum is kept", ld(5, POINTS[5] * 2) + ld(7, POINTS[7] * 3)),
    ("gauge, sum, gauge: the last gauge only", ld(5, POINTS[5] * 2) + ld(7, POINTS[7]) + ld(5, POINTS[5])),
    ("a sum as a varint is an unknown field", ld(5, POINTS[5] * 2) + b"\x38\x01"),
    ("a sum as a group is an unknown field", ld(5, POINTS[5] * 2) + b"\x3b\x3c"),
    ("a name between two gauges", ld(5, POINTS[5]) + ld(1, b"m") + ld(5, POINTS[5])),
    ("every type once: the summary is kept", b"".join(ld(n, POINTS[n] * n) for n in (5, 7, 9, 10, 11))),
    ("a metric with no data", ld(1, b"m")),
    ("data points sent as varints", ld(9, b"\x08\x01" + POINTS[9])),
])
def test_metric_points_count_as_the_parse_keeps_them(name: str, metric: bytes) -> None:
    assert_agrees(Signal.METRICS, metric_request(metric) * 2)


def test_a_request_of_64_mib() -> None:
    """Linear in the size: one scope of spans with ~1 KiB of attributes each (a quadratic walk would not end)."""
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /x",
                attributes=[KeyValue(key=f"k{i}", value=AnyValue(string_value="v" * 90)) for i in range(10)])
    spans = ld(2, span.SerializeToString())
    count = (64 << 20) // len(spans)
    data = ld(1, ld(2, spans * count))
    assert len(data) > 63 << 20
    assert wireschema.check_python(Signal.TRACES, data)[0] == count
    if spanscan is not None:
        assert wireschema.check(Signal.TRACES, data) == (count, None)
        with pytest.raises(ValueError):
            wireschema.check(Signal.TRACES, data[:-1])


def test_without_the_extension_check_parses_and_hands_the_message_back() -> None:
    code = ("from gateway import Signal, check_request\n"
            "from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest as R\n"
            "count, batch = check_request(Signal.TRACES, bytes.fromhex('0a0412021200'))\n"
            "print(count, type(batch) is R, len(batch.resource_spans))\n"
            "try:\n    check_request(Signal.TRACES, b'\\x0a\\x05')\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OTELGW_PURE_PYTHON": "1"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "1 True 1"
    assert out[1].startswith("malformed protobuf: ")


@needs_c
def test_with_the_extension_check_does_not_parse() -> None:
    data = ld(1, ld(2, ld(2, Span(name="a").SerializeToString())))
    assert check_request(Signal.TRACES, data) == (1, None)


@needs_c
@PROPERTY
@given(st.binary(max_size=400), st.data())
def test_a_broken_schema_is_an_error_never_a_crash(noise: bytes, data: st.DataObject) -> None:
    """The C side reads the schema with every offset and index checked: any bytes give an answer or TypeError."""
    good = bytearray(wireschema.schema(Signal.METRICS))
    for _ in range(data.draw(st.integers(1, 8))):
        good[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    request = metric_request(ld(1, b"m") + ld(9, POINTS[9]))
    for schema in (bytes(good), bytes(good[:cut]), b"OTWS" + noise):
        assert spanscan is not None
        with contextlib.suppress(TypeError, ValueError):
            spanscan.validate(request, schema)


def test_build_refuses_a_oneof_with_items_that_merges() -> None:
    """A singular field whose type holds a oneof with items: two occurrences merge, which the walk does not model
    (OTLP has no such field: a Metric is always a repeated element)."""
    with pytest.raises(ValueError, match="singular message field"):
        wireschema.build(_singular_metric_holder(), wireschema.item_fields(Signal.METRICS))


def _singular_metric_holder() -> Any:
    """A message type t.Holder with one singular Metric field, in a pool of its own."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
        added.add(file.name)

    add(Metric.DESCRIPTOR.file)
    holder = descriptor_pb2.FileDescriptorProto(name="holder.proto", syntax="proto3", package="t",
                                                dependency=[Metric.DESCRIPTOR.file.name])
    holder.message_type.add(name="Holder").field.add(
        name="metric", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".opentelemetry.proto.metrics.v1.Metric")
    pool.Add(holder)
    return pool.FindMessageTypeByName("t.Holder")


# ------------------------------------------------------------------------------------------- property tests
# Strings come from a set that includes a marker ("§§"); a mutation replaces markers with invalid UTF-8 of the
# same length, in whatever kind of string field (or bytes field) they are.
MARK = "§§"
TEXT = st.sampled_from(["", "a", "GET /api/tickets", "ünïcödé", MARK, f"x{MARK}y", "k" * 140])
BYTES = st.sampled_from([b"", b"\x01" * 8, b"\x02" * 16, MARK.encode(), b"\xff\xfe"])
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
DOUBLE = st.floats(allow_nan=False) | st.sampled_from([float("nan"), float("inf")])

any_values = st.recursive(
    st.one_of(st.builds(AnyValue), st.builds(AnyValue, string_value=TEXT),
              st.builds(AnyValue, bool_value=st.booleans()), st.builds(AnyValue, int_value=I64),
              st.builds(AnyValue, double_value=DOUBLE),
              st.builds(AnyValue, bytes_value=BYTES)),
    lambda inner: st.one_of(
        st.builds(lambda values: AnyValue(array_value=ArrayValue(values=values)), st.lists(inner, max_size=3)),
        st.builds(lambda pairs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v)
                                                                           for k, v in pairs])),
                  st.lists(st.tuples(TEXT, inner), max_size=3))),
    max_leaves=8)
attributes = st.lists(st.builds(KeyValue, key=TEXT, value=any_values), max_size=3)
scopes = st.builds(InstrumentationScope, name=TEXT, version=TEXT, attributes=attributes,
                   dropped_attributes_count=st.integers(0, 5))


@st.composite
def resource(draw: Any) -> dict[str, Any]:
    refs = draw(st.lists(st.builds(EntityRef, schema_url=TEXT, type=TEXT, id_keys=st.lists(TEXT, max_size=2),
                                   description_keys=st.lists(TEXT, max_size=2)), max_size=1))
    return {"attributes": draw(attributes), "entity_refs": refs}


@st.composite
def spans(draw: Any) -> Span:
    span = Span(trace_id=draw(BYTES), span_id=draw(BYTES), parent_span_id=draw(BYTES), trace_state=draw(TEXT),
                name=draw(TEXT), kind=draw(st.integers(-1, 6)), start_time_unix_nano=draw(U64),
                end_time_unix_nano=draw(U64), attributes=draw(attributes), flags=draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(0, 2))):
        span.events.add(time_unix_nano=draw(U64), name=draw(TEXT), attributes=draw(attributes))
    for _ in range(draw(st.integers(0, 2))):
        span.links.add(trace_id=draw(BYTES), span_id=draw(BYTES), trace_state=draw(TEXT),
                       attributes=draw(attributes), flags=draw(st.integers(0, 3)))
    if draw(st.booleans()):
        span.status.CopyFrom(Status(code=draw(st.integers(0, 3)), message=draw(TEXT)))
    return span


@st.composite
def logs(draw: Any) -> LogRecord:
    record = LogRecord(time_unix_nano=draw(U64), observed_time_unix_nano=draw(U64),
                       severity_number=draw(st.integers(0, 24)), severity_text=draw(TEXT), attributes=draw(attributes),
                       trace_id=draw(BYTES), span_id=draw(BYTES), event_name=draw(TEXT))
    if draw(st.booleans()):
        record.body.CopyFrom(draw(any_values))
    return record


@st.composite
def exemplars(draw: Any) -> list[Any]:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Exemplar

    return [Exemplar(filtered_attributes=draw(attributes), time_unix_nano=draw(U64), as_double=draw(DOUBLE),
                     span_id=draw(BYTES), trace_id=draw(BYTES))
            for _ in range(draw(st.integers(0, 1)))]


@st.composite
def metrics(draw: Any) -> Metric:
    metric = Metric(name=draw(TEXT), description=draw(TEXT), unit=draw(TEXT), metadata=draw(attributes))
    kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram", "summary", None]))
    count = draw(st.integers(0, 3))
    if kind in ("gauge", "sum"):
        data = getattr(metric, kind)
        for _ in range(count):
            point = NumberDataPoint(attributes=draw(attributes), time_unix_nano=draw(U64), exemplars=draw(exemplars()))
            if draw(st.booleans()):
                point.as_int = draw(I64)
            else:
                point.as_double = draw(DOUBLE)
            data.data_points.append(point)
        if kind == "sum":
            metric.sum.is_monotonic = draw(st.booleans())
            metric.sum.aggregation_temporality = draw(st.integers(0, 2))
        if count == 0:
            data.SetInParent()
    elif kind == "histogram":
        metric.histogram.SetInParent()
        for _ in range(count):
            metric.histogram.data_points.append(HistogramDataPoint(
                attributes=draw(attributes), count=draw(U64), sum=draw(DOUBLE),
                bucket_counts=draw(st.lists(U64, max_size=4)), explicit_bounds=draw(st.lists(DOUBLE, max_size=3)),
                exemplars=draw(exemplars()), min=draw(DOUBLE), max=draw(DOUBLE)))
    elif kind == "exponential_histogram":
        metric.exponential_histogram.SetInParent()
        for _ in range(count):
            buckets = ExponentialHistogramDataPoint.Buckets
            metric.exponential_histogram.data_points.append(ExponentialHistogramDataPoint(
                attributes=draw(attributes), scale=draw(st.integers(-10, 20)), zero_count=draw(U64),
                positive=buckets(offset=draw(st.integers(-5, 5)), bucket_counts=draw(st.lists(U64, max_size=4))),
                negative=buckets(bucket_counts=draw(st.lists(U64, max_size=2))), exemplars=draw(exemplars()),
                zero_threshold=draw(DOUBLE)))
    elif kind == "summary":
        metric.summary.SetInParent()
        for _ in range(count):
            quantiles = [SummaryDataPoint.ValueAtQuantile(quantile=draw(DOUBLE), value=draw(DOUBLE))
                         for _ in range(draw(st.integers(0, 2)))]
            metric.summary.data_points.append(SummaryDataPoint(attributes=draw(attributes), count=draw(U64),
                                                               sum=draw(DOUBLE), quantile_values=quantiles))
    return metric


@st.composite
def requests(draw: Any) -> tuple[Signal, bytes]:
    signal = draw(st.sampled_from(list(Signal)))
    request = signal.request_type()
    for _ in range(draw(st.integers(0, 2))):
        if signal is Signal.TRACES:
            rs = request.resource_spans.add(schema_url=draw(TEXT))
            rs.resource.MergeFrom(rs.resource.__class__(**draw(resource())))
            for _ in range(draw(st.integers(0, 2))):
                rs.scope_spans.add(scope=draw(scopes), spans=draw(st.lists(spans(), max_size=3)),
                                   schema_url=draw(TEXT))
        elif signal is Signal.LOGS:
            rl = request.resource_logs.add(schema_url=draw(TEXT))
            rl.resource.MergeFrom(rl.resource.__class__(**draw(resource())))
            for _ in range(draw(st.integers(0, 2))):
                rl.scope_logs.add(scope=draw(scopes), log_records=draw(st.lists(logs(), max_size=3)))
        else:
            rm = request.resource_metrics.add(schema_url=draw(TEXT))
            rm.resource.MergeFrom(rm.resource.__class__(**draw(resource())))
            for _ in range(draw(st.integers(0, 2))):
                rm.scope_metrics.add(scope=draw(scopes), metrics=draw(st.lists(metrics(), max_size=3)))
    return signal, request.SerializeToString()


@PROPERTY
@given(requests())
def test_requests_of_every_signal_are_accepted_and_counted(case: tuple[Signal, bytes]) -> None:
    signal, data = case
    assert upb(signal.request_type, data) is not None
    assert_agrees(signal, data)


INVALID_UTF8 = [b"\xed\xa0\x80a", b"\xc0\xafab", b"\xf4\x90\x80\x80", b"\xffabc", b"ab\xe2\x82"]


@PROPERTY
@given(requests(), st.data())
def test_invalid_utf8_in_any_string_field(case: tuple[Signal, bytes], data: st.DataObject) -> None:
    signal, request = case
    marker = MARK.encode()
    places = [m.start() for m in re.finditer(re.escape(marker), request)]
    if not places:
        return
    chosen = data.draw(st.lists(st.sampled_from(places), min_size=1, max_size=3, unique=True))
    mutated = bytearray(request)
    for at in chosen:
        mutated[at:at + 4] = data.draw(st.sampled_from(INVALID_UTF8))
    assert_agrees(signal, bytes(mutated))


@PROPERTY
@given(requests(), st.data())
def test_flipped_cut_and_spliced_bytes(case: tuple[Signal, bytes], data: st.DataObject) -> None:
    signal, request = case
    mutated = bytearray(request)
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = data.draw(st.integers(0, len(mutated)))
        if how == "flip" and at < len(mutated):
            mutated[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "cut":
            del mutated[at:]
        elif how == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del mutated[at:at + data.draw(st.integers(1, 3))]
    assert_agrees(signal, bytes(mutated))


@PROPERTY
@given(st.sampled_from(list(Signal)), st.binary(max_size=200))
def test_random_bytes(signal: Signal, noise: bytes) -> None:
    assert_agrees(signal, noise)


# Extra fields inserted inside messages, framing kept right: every wire type, groups (also unbalanced), known field
# numbers with their own or another wire type, invalid tags.
extra_fields = st.one_of(
    st.builds(lambda n, v: tag(n, 0) + varint(v), st.integers(1, 20), U64),
    st.builds(lambda n: tag(n, 0) + b"\xff" * 10 + b"\x01", st.integers(1, 20)),   # 11-byte varint
    st.builds(lambda n, b: tag(n, 1) + b, st.integers(1, 20), st.binary(min_size=8, max_size=8)),
    st.builds(lambda n, b: tag(n, 5) + b, st.integers(1, 20), st.binary(min_size=4, max_size=4)),
    st.builds(lambda n, b: ld(n, b), st.integers(1, 20), st.binary(max_size=12)),
    st.builds(lambda n, b: ld(n, b), st.integers(1, 20), st.sampled_from(INVALID_UTF8)),
    st.builds(lambda n, inner: tag(n, 3) + inner + tag(n, 4), st.integers(1, 20),
              st.sampled_from([b"", b"\x08\x01", b"\x00\x01", b"\x1b\x1c", b"\x12\x01\xff"])),
    st.builds(lambda n, m: tag(n, 3) + tag(m, 4), st.integers(1, 20), st.integers(1, 20)),    # maybe unbalanced
    st.builds(lambda n: tag(n, 3), st.integers(1, 20)),                                     # unterminated
    st.builds(lambda n: tag(n, 4), st.integers(1, 20)),
    st.builds(lambda n, w: tag(n, w) + b"\x01", st.integers(0, 20), st.sampled_from([6, 7])),
    st.just(b"\x00\x01"),
    st.builds(lambda n: tag(n, 2) + b"\x81\x80\x80\x80\x80\x00" + b"a", st.integers(1, 20)),  # 6-byte length
)


def walk_and_insert(cls_descriptor: Any, data: bytes, draw: Any, depth: int = 0) -> bytes:
    """data (well formed, of the message type given) re-encoded with extra fields drawn in at any level."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        if draw(st.integers(0, 19)) == 0:
            out += draw(extra_fields)
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            size, pos = _read_varint(data, pos)
            payload = data[pos:pos + size]
            pos += size
            field = cls_descriptor.fields_by_number.get(number)
            if field is not None and field.message_type is not None and depth < 12:
                out += ld(number, walk_and_insert(field.message_type, payload, draw, depth + 1))
                continue
        out += data[start:pos]
    if draw(st.integers(0, 9)) == 0:
        out += draw(extra_fields)
    return bytes(out)


@PROPERTY
@given(requests(), st.data())
def test_fields_inserted_at_every_level(case: tuple[Signal, bytes], data: st.DataObject) -> None:
    signal, request = case
    mutated = walk_and_insert(signal.request_type.DESCRIPTOR, request, data.draw)
    assert_agrees(signal, mutated)


def test_the_schema_follows_the_descriptors() -> None:
    """Every field of every message a request reaches has the entry of its own wire type (and of wire type 2 when
    it is a repeated scalar), with its message index; every other tag is unknown."""
    wire_types = {1: 0, 2: 1, 3: 5, 4: 2, 5: 2, 6: 2, 7: 2}
    for signal in Signal:
        schema = wireschema.schema(signal)
        assert schema[:4] == b"OTWS"
        messages = wireschema._reachable(signal.request_type.DESCRIPTOR)
        index = {m.full_name: i for i, m in enumerate(messages)}
        assert int.from_bytes(schema[4:8], "little") == len(messages)
        for number, message in enumerate(messages):
            offset, tags, _ = (int.from_bytes(schema[8 + 12 * number + 4 * k:][:4], "little") for k in range(3))
            assert tags == 8 * (max(f.number for f in message.fields) + 1)
            expected = {}
            for field in message.fields:
                action = wireschema._kind(field)
                if field.message_type is not None:
                    expected[field.number * 8 + 2] = (7 if field in wireschema.item_fields(signal) else 6,
                                                      index[field.message_type.full_name])
                else:
                    expected[field.number * 8 + wire_types[action]] = (action, 0)
                    if field.is_repeated and action in (1, 2, 3):
                        expected[field.number * 8 + 2] = (action + 7, 0)
            for tag_ in range(tags):
                entry = int.from_bytes(schema[offset + 4 * tag_:][:4], "little")
                assert (entry & 0xFF, entry >> 16) == expected.get(tag_, (0, 0)), (message.full_name, tag_)
    items = {f.full_name for f in wireschema.item_fields(Signal.METRICS)}
    assert len(items) == 5 and all(name.endswith(".data_points") for name in items)
