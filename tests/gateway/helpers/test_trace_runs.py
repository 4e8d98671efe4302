"""The serialized buffer form: splitting requests into per-trace runs, and assembling runs back."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span

from gateway.helpers.trace_runs import EnvelopeTable, assemble, split_request, stamp
from tests.plugins.processors.tail_sampling.traces import BASE_NS, MS, request, span, spans_of, tid


def triples(batch: ExportTraceServiceRequest) -> list[tuple[bytes, bytes, bytes]]:
    """(resource, scope, span) of every span, serialized, sorted: what must survive any regrouping."""
    return sorted((rs.resource.SerializeToString() + rs.schema_url.encode(),
                   ss.scope.SerializeToString() + ss.schema_url.encode(), s.SerializeToString())
                  for rs in batch.resource_spans for ss in rs.scope_spans for s in ss.spans)


def mixed() -> ExportTraceServiceRequest:
    batch = request(({"service.name": "a"}, [span(1, 0, root=True), span(1, 1), span(2, 0, root=True), span(1, 2)]),
                    ({"service.name": "b"}, [span(2, 1, start_ms=5, duration_ms=100), span(3, 0, root=True)]))
    batch.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.21.0"
    extra = batch.resource_spans[1].scope_spans.add()
    extra.scope.name = "second-scope"
    extra.schema_url = "scope-schema"
    extra.spans.extend([span(3, 1), span(3, 2, status=2)])
    return batch


def test_runs_group_consecutive_spans_of_a_trace() -> None:
    batch = mixed()
    scopes = split_request(batch.SerializeToString(), batch, want_times=True, want_root=True)
    assert [[(run[0], run[2]) for run in runs] for _, _, runs in scopes] == [
        [(tid(1), 2), (tid(2), 1), (tid(1), 1)], [(tid(2), 1), (tid(3), 1)], [(tid(3), 2)]]
    roots = [[run[5] for run in runs] for _, _, runs in scopes]
    assert roots == [[True, True, False], [False, True], [False]]
    run = scopes[1][2][0]
    assert (run[3], run[4]) == (BASE_NS + 5 * MS, BASE_NS + 105 * MS)


def test_a_run_is_a_valid_scope_spans_fragment() -> None:
    batch = mixed()
    scopes = split_request(batch.SerializeToString(), batch)
    run = scopes[0][2][0][1]
    assert list(ScopeSpans.FromString(run).spans) == list(batch.resource_spans[0].scope_spans[0].spans[:2])


def test_assemble_restores_every_span_with_its_resource_and_scope() -> None:
    batch = mixed()
    table = EnvelopeTable()
    items = [(table.get(resource, scope), run[1])
             for resource, scope, runs in split_request(batch.SerializeToString(), batch) for run in runs]
    rebuilt = ExportTraceServiceRequest.FromString(assemble(reversed(items)))
    assert triples(rebuilt) == triples(batch)
    assert len(table) == 3  # one envelope per distinct (resource, scope)
    assert len(rebuilt.resource_spans) == 2  # runs of one resource share a ResourceSpans


def test_large_spans_and_empty_requests() -> None:
    big = span(7, 0, root=True, attributes={"blob": "x" * 70_000})
    batch = request(({"service.name": "a"}, [big, span(7, 1)]))
    [(_, _, runs)] = split_request(batch.SerializeToString(), batch)
    assert [(r[0], r[2]) for r in runs] == [(tid(7), 2)]
    assert spans_of([ExportTraceServiceRequest.FromString(assemble([(EnvelopeTable().get(b"", b""), runs[0][1])]))]
                    ) == [big, span(7, 1)]
    assert split_request(b"", ExportTraceServiceRequest()) == []


def test_spans_without_trace_id_are_kept_together() -> None:
    batch = request(({}, [Span(name="a"), Span(name="b"), span(1, 0)]))
    [(_, _, runs)] = split_request(batch.SerializeToString(), batch)
    assert [(r[0], r[2]) for r in runs] == [(b"", 2), (tid(1), 1)]


def test_stamp_appends_attributes_to_every_span() -> None:
    spans = [span(1, 0, root=True, attributes={"a": 1}), span(1, 1, attributes={"blob": "y" * 20_000})]
    run = ScopeSpans(spans=spans).SerializeToString()
    suffix = Span(attributes=[KeyValue(key="tailsampling.policy", value=AnyValue(string_value="errors"))]
                  ).SerializeToString()
    stamped = ScopeSpans.FromString(stamp(run, suffix)).spans
    assert [[kv.key for kv in s.attributes] for s in stamped] == [["a", "tailsampling.policy"],
                                                                   ["blob", "tailsampling.policy"]]
    assert [s.span_id for s in stamped] == [s.span_id for s in spans]
