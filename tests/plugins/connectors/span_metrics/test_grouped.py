"""span_metrics' grouped intake (the default configuration) against counting one span at a time.

``SpanAggregator`` counts spans without dimensions, exemplars or events by listing their durations per series and
counting the lists later (``_add_grouped``); every other configuration counts one span at a time
(``_add_spans``). Both must give the same output to the last bit: same series in the same order, counts,
buckets, sums, exponential histograms, overflow, delta starts. These tests feed the same requests to one
aggregator of each kind and compare what they build, serialized; each runs with the grouped loop in C and in
Python.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.configtypes import decode
from gateway.wirebytes import attached
from plugins.connectors.span_metrics import aggregator as aggregator_module
from plugins.connectors.span_metrics.aggregator import SpanAggregator
from plugins.connectors.span_metrics.factory import factory
from plugins.connectors.span_metrics.histograms import add_in_order, count_sorted

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
BOUNDS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000)


@pytest.fixture(autouse=True, params=["c", "python"])
def intake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: with the grouped loop in C (``spanscan.span_groups``) and in Python."""
    if request.param == "c" and aggregator_module.spanscan is None:
        pytest.skip("the C extension is not built here")
    if request.param == "python":
        monkeypatch.setattr(aggregator_module, "spanscan", None)
    return str(request.param)


def add(aggregator: SpanAggregator, request: ExportTraceServiceRequest) -> None:
    """``aggregator.add`` with the request's bytes attached, as the otlp receiver hands a request on (the C
    grouping reads them)."""
    with attached(request, request.SerializeToString()):
        aggregator.add(request)


def config(**overrides: Any) -> Any:
    return decode(factory.create_default_config(), overrides)


def pair(**overrides: Any) -> tuple[SpanAggregator, SpanAggregator]:
    """(grouped, one span at a time) for the same configuration."""
    grouped, per_span = SpanAggregator(config(**overrides)), SpanAggregator(config(**overrides))
    assert not grouped._per_span  # the configurations here are the grouped path's
    per_span._per_span = True
    return grouped, per_span


def duration_ns(rng: random.Random) -> int:
    """Durations that probe every edge: on a bound to the nanosecond, just off it, zero, negative (the end
    before the start), beyond the last bound, and the usual spread."""
    choice = rng.random()
    if choice < 0.15:
        return rng.choice(BOUNDS_MS) * MS + rng.choice((-1, 0, 0, 1))
    if choice < 0.2:
        return rng.choice((0, -1, -5 * MS, 1))
    if choice < 0.23:
        return rng.randrange(15_000 * MS, 10**13)
    return rng.randrange(1, 120 * MS)


def traffic(seed: int, requests: int = 30, resources: int = 3) -> list[ExportTraceServiceRequest]:
    """Requests of a few resources and scopes, names repeating across and within requests, every kind (and one
    no SDK sends), statuses absent, explicitly UNSET, OK, ERROR and unknown; a name with a 'z' (the status field's
    tag byte, 0x7a) in it."""
    rng = random.Random(seed)
    names = ["GET /orders", "SELECT tickets", "publish z-events", "POST /pay", "GET /users/{id}"]
    out = []
    for _ in range(requests):
        request = ExportTraceServiceRequest()
        out.append(request)
        for _ in range(rng.randrange(1, 3)):
            rs = request.resource_spans.add()
            service = rng.randrange(resources)
            rs.resource.attributes.add(key="service.name").value.string_value = f"svc-{service}"
            for scope in rng.sample(["lib", "other"], rng.randrange(1, 3)):
                ss = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = scope, "1.2"
                for _ in range(rng.randrange(0, 60)):
                    span = ss.spans.add(name=rng.choice(names), kind=rng.choice((0, 1, 2, 2, 2, 3, 3, 4, 5, 9)))
                    span.trace_id, span.span_id = rng.randbytes(16), rng.randbytes(8)
                    span.start_time_unix_nano = T0 + rng.randrange(10**12)
                    span.end_time_unix_nano = span.start_time_unix_nano + duration_ns(rng)
                    status = rng.random()
                    if status < 0.05:
                        span.status.code = 2
                    elif status < 0.07:
                        span.status.code = 1
                    elif status < 0.08:
                        span.status.message = "set, with code UNSET"  # present, code 0
                    elif status < 0.085:
                        span.status.code = 7  # not a code the enum knows
    return out


def serialized(request: ExportMetricsServiceRequest | None) -> bytes:
    """The request with its points' start times blanked (each aggregator takes its own clock at a series'
    start), serialized."""
    if request is None:
        return b""
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for points in (metric.sum.data_points, metric.histogram.data_points,
                               metric.exponential_histogram.data_points):
                    for point in points:
                        point.start_time_unix_nano = 0
    return request.SerializeToString(deterministic=True)


def assert_same(grouped: SpanAggregator, per_span: SpanAggregator, now_ns: int) -> None:
    assert serialized(grouped.build(now_ns)) == serialized(per_span.build(now_ns))
    assert (grouped.spans, grouped.overflowed, grouped.series_count) == (
        per_span.spans, per_span.overflowed, per_span.series_count)


CONFIGS = {
    "defaults": {},
    "delta": {"aggregation_temporality": "AGGREGATION_TEMPORALITY_DELTA"},
    "seconds, own buckets": {"histogram": {"unit": "s", "explicit": {"buckets": ["0ms", "3ms", "50ms", "1s"]}}},
    "exponential": {"histogram": {"exponential": {"max_size": 20}}},
    "no histogram": {"histogram": {"disable": True}},
    "overflow": {"aggregation_cardinality_limit": 7},
    "overflow, delta": {"aggregation_cardinality_limit": 4, "aggregation_temporality": "AGGREGATION_TEMPORALITY_DELTA"},
    "no status": {"exclude_dimensions": ["status.code"]},
    "no name, no kind": {"exclude_dimensions": ["span.name", "span.kind"]},
    "scope": {"include_instrumentation_scope": ["lib"]},
    "few resources held": {"resource_metrics_cache_size": 2},
}


@pytest.mark.parametrize("fold_after", [32_768, 50])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_grouped_intake_gives_what_counting_span_by_span_gives(name: str, fold_after: int, monkeypatch) -> None:
    monkeypatch.setattr(aggregator_module, "FOLD_AFTER", fold_after)  # 50: pending lists counted mid-stream too
    grouped, per_span = pair(**CONFIGS[name])
    for flush in range(3):
        for request in traffic(seed=flush, resources=4):
            add(grouped, request)
            add(per_span, request)
        assert_same(grouped, per_span, now_ns=T0 + flush * 10**9)


def test_a_set_status_is_never_skipped_and_an_unset_one_counts_as_unset() -> None:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "checkout"
    spans = rs.scope_spans.add().spans
    for i, (code, message) in enumerate([(0, ""), (2, ""), (0, "z"), (1, "zzz"), (2, "\x7a")]):
        # a 'z' (0x7a, the status field's tag) in the name, the ids and the status message of every span
        span = spans.add(name="zone z", kind=2, trace_id=b"z" * 16, span_id=b"z" * 8)
        span.start_time_unix_nano, span.end_time_unix_nano = T0, T0 + (i + 1) * MS
        if code or message:
            span.status.code, span.status.message = code, message
    grouped, per_span = pair()
    add(grouped, request)
    add(per_span, request)
    out = grouped.build(T0)
    assert serialized(out) == serialized(per_span.build(T0))
    points = out.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
    by_status = {next(kv.value.string_value for kv in p.attributes if kv.key == "status.code"): p.as_int
                 for p in points}
    assert by_status == {"STATUS_CODE_UNSET": 2, "STATUS_CODE_ERROR": 2, "STATUS_CODE_OK": 1}


def test_a_stream_of_new_names_is_counted_span_by_span_and_the_usual_one_grouped_again() -> None:
    grouped, per_span = pair(aggregation_cardinality_limit=60)
    rng = random.Random(5)
    for i in range(6):
        request = traffic(seed=i, requests=1, resources=1)[0]
        for rs in request.resource_spans:
            rs.resource.attributes[0].value.string_value = "svc-0"
            if i in (2, 3):  # an id in the span name: nearly every span a new series, then overflow
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        span.name = f"GET /users/{rng.randrange(10**9)}"
        add(grouped, request)
        add(per_span, request)
        [resource] = grouped._resources.values()
        assert resource.sparse == (i in (2, 3) and any(ss.spans for rs in request.resource_spans
                                                        for ss in rs.scope_spans))
    assert grouped.overflowed > 0
    assert_same(grouped, per_span, T0)


@pytest.mark.parametrize("temporality", ["AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"])
def test_spans_arriving_during_a_flush_in_pieces_count_once_with_pending_spans_held(temporality: str) -> None:
    """A flush hands its series over in pieces and the event loop runs in between; spans that arrive then are
    pending in series that are about to be sent, being sent, or (delta) already swapped out."""
    def request(service: str, names: list[str]) -> ExportTraceServiceRequest:
        out = ExportTraceServiceRequest()
        rs = out.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        spans = rs.scope_spans.add().spans
        for i, name in enumerate(names):
            span = spans.add(name=name, kind=1)
            span.start_time_unix_nano, span.end_time_unix_nano = T0, T0 + (i % 97 + 1) * 100_000
        return out

    def fill(aggregator: SpanAggregator) -> None:
        for service in ("a", "b"):
            for i in range(0, 1200, 100):  # 100 new series of 5 spans each per request: grouped, not sparse
                add(aggregator, request(service, [f"op-{j}" for j in range(i, i + 100)] * 5))

    def late(service: str, new: str) -> ExportTraceServiceRequest:
        # a series of the first piece, one of the last pieces, and a new one (not enough of those to be sparse)
        return request(service, ["op-3", "op-1100", "op-3", "op-1100", new])

    outputs = []
    for per_span_path in (False, True):
        aggregator = SpanAggregator(config(aggregation_cardinality_limit=0, aggregation_temporality=temporality))
        aggregator._per_span = per_span_path
        fill(aggregator)
        pieces = []
        for piece in aggregator.build_batches(now_ns=T0, max_series=500):
            pieces.append(serialized(piece))
            if len(pieces) in (1, 4):  # resource a being sent (b not reached yet), then b being sent
                for service in ("a", "b"):
                    add(aggregator, late(service, f"new-{len(pieces)}"))
                if len(pieces) == 1:  # b, seen last, still has its series: its late spans took the grouped path
                    assert not list(aggregator._resources.values())[-1].sparse
        outputs.append((pieces, serialized(aggregator.build(T0 + 10**9))))
    assert len(outputs[0][0]) >= 5  # the late spans came while both resources were being sent
    assert outputs[0] == outputs[1]


def test_count_sorted_puts_every_value_where_bisect_left_does() -> None:
    rng = random.Random(3)
    bounds = (0.0, 2.0, 4.0, 6.0, 10.0, 50.0, 100.0, 15_000.0)
    for _ in range(300):
        values = [rng.choice((*bounds, 0.0, 1e-9, 3.0, 2.0000000001, 1.9999999999, 1e9, rng.uniform(0, 200)))
                  for _ in range(rng.randrange(0, 60))]
        expected = [1] * (len(bounds) + 1)
        for value in values:
            expected[bisect_left(bounds, value)] += 1
        counts = [1] * (len(bounds) + 1)
        count_sorted(counts, bounds, sorted(values))
        assert counts == expected


def test_add_in_order_adds_left_to_right_as_a_loop_does() -> None:
    rng = random.Random(4)
    cases = [[1e16, 1.0, -1e16, 1.0], [0.1] * 10, [1e308, 1e308, -1e308]]  # where other summations differ
    cases += [[rng.uniform(0, 90) for _ in range(rng.randrange(1, 500))] for _ in range(50)]
    for values in cases:
        for start in (0.0, 123.456, 1e16):
            total = start
            for value in values:
                total += value
            assert add_in_order(values, start) == total


def test_a_dimension_takes_the_last_attribute_of_its_key_then_the_resource_then_the_default() -> None:
    aggregator = SpanAggregator(config(dimensions=[{"name": "http.method", "default": "GET"}, {"name": "host"},
                                                   {"name": "code"}]))
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "checkout"
    rs.resource.attributes.add(key="host").value.string_value = "node-1"
    spans = rs.scope_spans.add().spans
    for attributes in ([("http.method", "PUT"), ("code", 1), ("http.method", "POST")],  # the last one wins
                       [("host", "span-host"), ("code", 2)], []):
        span = spans.add(name="op", kind=2)
        span.start_time_unix_nano, span.end_time_unix_nano = T0, T0 + MS
        for key, value in attributes:
            kv = span.attributes.add(key=key)
            if isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.string_value = value
    add(aggregator, request)
    points = aggregator.build(T0).resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
    dims = sorted(tuple(sorted((kv.key, kv.value.string_value or kv.value.int_value) for kv in p.attributes
                               if kv.key in ("http.method", "host", "code"))) for p in points)
    assert dims == sorted([(("code", 1), ("host", "node-1"), ("http.method", "POST")),
                           (("code", 2), ("host", "span-host"), ("http.method", "GET")),
                           (("host", "node-1"), ("http.method", "GET"))])


def test_the_c_grouping_reads_the_bytes_a_request_came_with_and_only_those(intake: str) -> None:
    """With the received bytes attached the spans are grouped in C; without them (a processor before changed
    the batch) in Python, since serializing the request would cost what the C loop saves."""
    grouped, _ = pair()
    [request] = traffic(3, requests=1)
    assert grouped._groups(request) is None if intake == "c" else not grouped._grouped_in_c
    if intake == "c":
        with attached(request, request.SerializeToString()):
            groups = grouped._groups(request)
        assert groups is not None and len(groups) == len(request.resource_spans)


@pytest.mark.parametrize("name", [*CONFIGS, "dimensions"])
def test_a_request_held_as_bytes_is_counted_as_its_parse_would_be(name: str, intake: str) -> None:
    """``add_wire``: the otlp receiver hands valid requests on as bytes. Grouped in C, only the resources and
    scopes are parsed; the request itself only for resources counted span by span (sparse, at the cardinality
    limit) and for configurations that always count that way (dimensions)."""
    overrides = {"dimensions": [{"name": "peer.service"}]} if name == "dimensions" else CONFIGS[name]
    by_bytes, reference = SpanAggregator(config(**overrides)), SpanAggregator(config(**overrides))
    reference._per_span = True
    parses = 0

    def parse(data: bytes) -> ExportTraceServiceRequest:
        nonlocal parses
        parses += 1
        return ExportTraceServiceRequest.FromString(data)

    requests = 0
    for flush in range(3):
        for request in traffic(seed=flush, resources=4):
            data = request.SerializeToString()
            by_bytes.add_wire(data, lambda data=data: parse(data))
            add(reference, request)
            requests += 1
        assert_same(by_bytes, reference, now_ns=T0 + flush * 10**9)
    if not by_bytes._grouped_in_c:  # no C, or a configuration the C grouping does not serve
        assert parses == requests
    elif name == "defaults":
        # Only while a resource's series are new (sparse) are its requests parsed whole; names repeat after that.
        assert parses <= requests // 10
    elif "overflow" not in name:
        assert parses < requests


def test_a_resource_or_scope_written_twice_counts_as_the_merge_the_parse_makes(intake: str) -> None:
    """A sender may write a message field twice; the parse merges the two. Read from the bytes, the resource
    and the scope are merged the same way, so the series and their resource attributes are those of the parse."""
    [request] = traffic(11, requests=1, resources=1)
    rs = request.resource_spans[0]
    extra = type(rs.resource)()
    extra.attributes.add(key="deployment.environment").value.string_value = "production"
    scope_extra = type(rs.scope_spans[0].scope)(version="9.9")
    # ResourceSpans.resource (1) and ScopeSpans.scope (1) again, after everything else.
    resource_field = b"\x0a" + bytes([extra.ByteSize()]) + extra.SerializeToString()
    scope_field = b"\x0a" + bytes([scope_extra.ByteSize()]) + scope_extra.SerializeToString()
    ss_bytes = rs.scope_spans[0].SerializeToString() + scope_field
    rest = b"".join(b"\x12" + _varint(len(ss.SerializeToString())) + ss.SerializeToString()
                    for ss in rs.scope_spans[1:])
    body = (b"\x0a" + _varint(rs.resource.ByteSize()) + rs.resource.SerializeToString()
            + b"\x12" + _varint(len(ss_bytes)) + ss_bytes + rest + resource_field)
    data = b"\x0a" + _varint(len(body)) + body
    parsed = ExportTraceServiceRequest.FromString(data)
    assert len(parsed.resource_spans[0].resource.attributes) == 2  # merged by the parse
    overrides = {"include_instrumentation_scope": ["lib", "other"]}
    by_bytes, reference = SpanAggregator(config(**overrides)), SpanAggregator(config(**overrides))
    reference._per_span = True
    by_bytes.add_wire(data, lambda: ExportTraceServiceRequest.FromString(data))
    add(reference, parsed)
    assert_same(by_bytes, reference, now_ns=T0)


def _varint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])
