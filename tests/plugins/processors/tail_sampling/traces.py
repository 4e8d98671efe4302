"""Trace builders for the tail_sampling tests: small spans with chosen ids, times, statuses and attributes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.helpers.trace_runs import EnvelopeTable, split_request
from gateway.testing import any_value
from plugins.processors.tail_sampling.trace import TraceState, TraceView

BASE_NS = 1_700_000_000_000_000_000
MS = 1_000_000


def tid(n: int) -> bytes:
    """Trace id ``n``: random-looking like an SDK's, but reproducible (FNV-based sampling needs the spread)."""
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=16).digest()


def span(trace: int, index: int, *, root: bool = False, start_ms: float = 0, duration_ms: float = 1,
         status: int = 0, attributes: Mapping[str, Any] | None = None, trace_state: str = "",
         name: str = "op") -> Span:
    out = Span(trace_id=tid(trace), span_id=(trace * 1000 + index + 1).to_bytes(8, "big"), name=name,
               kind=2 if root else 3, trace_state=trace_state,
               start_time_unix_nano=BASE_NS + int(start_ms * MS),
               end_time_unix_nano=BASE_NS + int((start_ms + duration_ms) * MS))
    if not root:
        out.parent_span_id = (trace * 1000 + 1).to_bytes(8, "big")
    out.status.code = status  # type: ignore[assignment]
    out.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in (attributes or {}).items())
    return out


def request(*groups: tuple[Mapping[str, Any], Sequence[Span]], scope: str = "tests") -> ExportTraceServiceRequest:
    """One ResourceSpans per (resource attributes, spans) group."""
    out = ExportTraceServiceRequest()
    for resource, spans in groups:
        rs = out.resource_spans.add()
        rs.resource.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in resource.items())
        ss = rs.scope_spans.add()
        ss.scope.name = scope
        ss.spans.extend(spans)
    return out


def trace(spans: Iterable[Span], resource: Mapping[str, Any] | None = None) -> ExportTraceServiceRequest:
    return request(({"service.name": "svc", **(resource or {})}, list(spans)))


def view(batch: ExportTraceServiceRequest, status_on_ingest: bool = True) -> TraceView:
    """A decision-time view of the one trace in ``batch``, built the way the processor builds it; without
    ``status_on_ingest`` its status codes are not recorded, so policies read them off the bytes."""
    table = EnvelopeTable()
    state: TraceState | None = None
    for resource_header, scope_header, runs in split_request(batch.SerializeToString(), batch, True, True,
                                                             status_on_ingest):
        envelope = table.get(resource_header, scope_header)
        for trace_id, run, count, first, last, _, codes in runs:
            state = state or TraceState(trace_id, 0.0, 0.0)
            state.add(envelope, run, count, first, last, codes)
    assert state is not None
    return TraceView(state)


def spans_of(batches: Iterable[ExportTraceServiceRequest]) -> list[Span]:
    return [s for b in batches for rs in b.resource_spans for ss in rs.scope_spans for s in ss.spans]


def attribute(span: Span, key: str) -> Any:
    for kv in span.attributes:
        if kv.key == key:
            return getattr(kv.value, kv.value.WhichOneof("value"))
    return None
