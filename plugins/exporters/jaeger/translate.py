"""OTLP traces → Jaeger api_v2 ``PostSpansRequest`` bytes, by the Collector's Jaeger translation rules.

| OTLP | Jaeger |
|---|---|
| ResourceSpans (grouped by identical resource) | one Batch; ``Batch.process`` from the resource |
| resource ``service.name`` | ``Process.service_name`` (``unknown_service`` if missing) |
| other resource attributes | ``Process.tags`` |
| name, trace_id, span_id | operation_name, trace_id, span_id (the same bytes) |
| parent_span_id | first reference, CHILD_OF |
| links | FOLLOWS_FROM references (CHILD_OF if the link has ``opentracing.ref_type=child_of``); a link to the
  parent only sets the parent reference's type |
| start / end | start_time / duration |
| kind | tag ``span.kind``: internal, server, client, producer, consumer (none when UNSPECIFIED) |
| status OK / ERROR, message | ``otel.status_code`` OK / ERROR plus ``error=true``; ``otel.status_description`` |
| trace_state | ``w3c.tracestate`` |
| scope name / version | ``otel.scope.name`` / ``otel.scope.version`` |
| attributes | tags (arrays and maps as STRING holding JSON) |
| events | logs: ``event``=name (unless an attribute is called ``event``), then the attributes |
| dropped_*_count > 0 | ``otel.dropped_attributes_count``, ``otel.dropped_events_count``, ``otel.dropped_links_count`` |
| flags bit 0 (sampled) | flags bit 1 (sampled) |

Spans are never built as Python objects. The batch is re-read as a wire-compatible view
(``gateway.protos.otelgw.otlp_views_pb2``) that hands out attributes as bytes, each attribute is transcoded once
per distinct value (``wire.jaeger_key_value``, cached), and the request is assembled by concatenation. Spans
whose ids have the wrong length would make Jaeger reject the whole request, so they are left out and counted.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import Part, Split
from gateway.protos.jaeger.api_v2 import model_pb2
from gateway.protos.otelgw import otlp_views_pb2 as views

from . import wire

__all__ = ["MAX_REQUEST_BYTES", "Translator"]

#: Jaeger's collector accepts gRPC messages up to 4 MiB by default (collector.grpc-server.max-message-size):
#: larger batches are split into several PostSpans calls, each with the process.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Distinct attributes whose translation is kept; the cache starts over when it is full.
CACHE_ENTRIES = 16_384

_KIND = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_SPAN_TAG, _LOG_FIELD, _PROCESS_TAG = b"\x42", b"\x12", b"\x12"
_ERROR_TRUE = wire.field(_SPAN_TAG, wire.field(b"\x0a", b"error") + b"\x10\x01\x20\x01")
_STATUS = {
    1: wire.field(_SPAN_TAG, wire.string_tag("otel.status_code", "OK")),
    2: wire.field(_SPAN_TAG, wire.string_tag("otel.status_code", "ERROR")) + _ERROR_TRUE,
}
_KIND_TAGS = {kind: wire.field(_SPAN_TAG, wire.string_tag("span.kind", name)) for kind, name in _KIND.items()}
_EVENT_KEY = b"\x0a\x05event"  # a KeyValue whose key is exactly "event"
_REF_TYPE_KEY = b"\x0a\x14opentracing.ref_type"
_CHILD_OF, _FOLLOWS_FROM = b"", b"\x18\x01"  # SpanRef.ref_type; CHILD_OF = 0 is the default, so not written


def _int_tag(key: str, value: int) -> bytes:
    return wire.field(_SPAN_TAG, wire.field(b"\x0a", key.encode()) + b"\x10\x02\x28" + wire.varint(value))


def _string_field(tag: bytes, key: str, value: str) -> bytes:
    return wire.field(tag, wire.string_tag(key, value))


class Translator:
    """Holds the per-attribute and per-resource caches of one exporter."""

    def __init__(self, max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.max_request_bytes = max_request_bytes
        self._tags: dict[bytes, bytes] = {}
        self._names: dict[bytes, bytes] = {}
        self._processes: dict[bytes, bytes] = {}

    def translate(self, request: ExportTraceServiceRequest) -> Split[bytes]:
        """Serialized PostSpansRequest messages with their span counts, and the spans left out."""
        parts: list[Part[bytes]] = []
        result = Split(parts)
        view = views.TracesView.FromString(request.SerializeToString())
        by_resource: dict[bytes, list[bytes]] = {}
        for resource_spans in view.resource_spans:
            spans = by_resource.setdefault(resource_spans.resource, [])
            for scope_spans in resource_spans.scope_spans:
                scope_tags = self._scope_tags(scope_spans.scope)
                for span in scope_spans.spans:
                    encoded = self._span(span, scope_tags)
                    if encoded is None:
                        result.rejected += 1
                        result.reason = (f"span {span.span_id.hex() or '(empty)'}: Jaeger needs a trace_id "
                                         f"of 16 bytes and span ids of 8, got {len(span.trace_id)}, "
                                         f"{len(span.span_id)} and parent {len(span.parent_span_id)}")
                    else:
                        spans.append(encoded)
        for resource, spans in by_resource.items():
            if spans:
                parts.extend(self._requests(self._process(resource), spans))
        return result

    def _requests(self, process: bytes, spans: list[bytes]) -> Iterable[Part[bytes]]:
        """PostSpansRequest{batch: Batch{spans, process}}, split to stay under the size limit."""
        budget = self.max_request_bytes - len(process) - 16  # 16: the two envelopes' tags and lengths
        chunk: list[bytes] = []
        size = 0
        for span in spans:
            if chunk and size + len(span) > budget:
                yield Part(wire.field(b"\x0a", b"".join(chunk) + process), len(chunk))
                chunk, size = [], 0
            chunk.append(span)
            size += len(span)
        yield Part(wire.field(b"\x0a", b"".join(chunk) + process), len(chunk))

    def _process(self, resource: bytes) -> bytes:
        """The Batch.process field for a serialized Resource."""
        cached = self._processes.get(resource)
        if cached is not None:
            return cached
        service_name = "unknown_service"
        tags = []
        for attribute in views.ResourceView.FromString(resource).attributes:
            if attribute.startswith(b"\x0a\x0cservice.name\x12"):
                value = wire.jaeger_key_value(attribute)
                service_name = _tag_value_text(value)
            else:
                tags.append(wire.field(_PROCESS_TAG, wire.jaeger_key_value(attribute)))
        process = wire.field(b"\x12", wire.field(b"\x0a", service_name.encode()) + b"".join(tags))
        if len(self._processes) >= CACHE_ENTRIES:
            self._processes.clear()
        self._processes[resource] = process
        return process

    def _scope_tags(self, scope: views.ScopeView) -> bytes:
        tags = b""
        if scope.name:
            tags += _string_field(_SPAN_TAG, "otel.scope.name", scope.name)
        if scope.version:
            tags += _string_field(_SPAN_TAG, "otel.scope.version", scope.version)
        return tags

    def _span(self, span: views.SpanView, scope_tags: bytes) -> bytes | None:
        trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
        if len(trace_id) != 16 or len(span_id) != 8 or len(parent) not in (0, 8):
            return None
        name = self._names.get(span.name) or self._name(span.name)
        parts = [b"\x0a\x10", trace_id, b"\x12\x08", span_id, name]
        links = span.links
        if links:
            parts.append(self._references(trace_id, parent, links))
        elif parent:
            parts += (b"\x22\x1c\x0a\x10", trace_id, b"\x12\x08", parent)  # SpanRef{trace_id, span_id}
        if span.flags & 1:
            parts.append(b"\x28\x01")
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        parts += (wire.timestamp(b"\x32", start), wire.timestamp(b"\x3a", end - start if end > start else 0),
                  _KIND_TAGS.get(span.kind, b""), scope_tags)
        get, translate = self._tags.get, self._tag
        parts.extend([get(attribute) or translate(attribute) for attribute in span.attributes])
        if span.HasField("status"):
            status = span.status
            parts.append(_STATUS.get(status.code, b""))
            if status.message:
                parts.append(wire.field(_SPAN_TAG, wire.field(b"\x0a", b"otel.status_description")
                                        + wire.field(b"\x1a", status.message)))
        if span.trace_state:
            parts.append(_string_field(_SPAN_TAG, "w3c.tracestate", span.trace_state))
        if span.dropped_attributes_count:
            parts.append(_int_tag("otel.dropped_attributes_count", span.dropped_attributes_count))
        if span.dropped_events_count:
            parts.append(_int_tag("otel.dropped_events_count", span.dropped_events_count))
        if span.dropped_links_count:
            parts.append(_int_tag("otel.dropped_links_count", span.dropped_links_count))
        events = span.events
        if events:
            parts.extend([self._log(event) for event in events])
        return wire.field(b"\x0a", b"".join(parts))

    def _name(self, name: bytes) -> bytes:
        if len(self._names) >= CACHE_ENTRIES:
            self._names.clear()
        encoded = self._names[name] = wire.field(b"\x1a", name)
        return encoded

    def _tag(self, attribute: bytes) -> bytes:
        if len(self._tags) >= CACHE_ENTRIES:
            self._tags.clear()
        tag = self._tags[attribute] = wire.field(_SPAN_TAG, wire.jaeger_key_value(attribute))
        return tag

    def _log(self, event: views.EventView) -> bytes:
        fields = [wire.timestamp(b"\x0a", event.time_unix_nano)]
        if not any(attribute.startswith(_EVENT_KEY) for attribute in event.attributes):
            fields.append(wire.field(_LOG_FIELD, wire.field(b"\x0a", b"event") + wire.field(b"\x1a", event.name)))
        fields.extend(wire.field(_LOG_FIELD, wire.jaeger_key_value(a)) for a in event.attributes)
        return wire.field(b"\x4a", b"".join(fields))

    def _references(self, trace_id: bytes, parent: bytes, links: Iterable[views.LinkView]) -> bytes:
        """The parent first (CHILD_OF), then one reference per link, as the contrib translator does."""
        parent_type = _CHILD_OF
        refs = []
        for link in links:
            if len(link.trace_id) != 16 or len(link.span_id) != 8:
                continue  # a reference Jaeger would refuse, failing the whole request
            ref_type = _link_ref_type(link)
            if parent and link.span_id == parent and link.trace_id == trace_id:
                parent_type = ref_type
                continue
            refs.append(wire.field(b"\x22", wire.field(b"\x0a", link.trace_id) + wire.field(b"\x12", link.span_id)
                                   + ref_type))
        if parent:
            refs.insert(0, wire.field(b"\x22", wire.field(b"\x0a", trace_id) + wire.field(b"\x12", parent)
                                      + parent_type))
        return b"".join(refs)


def _link_ref_type(link: views.LinkView) -> bytes:
    for attribute in link.attributes:
        if attribute.startswith(_REF_TYPE_KEY):
            value = _tag_value_text(wire.jaeger_key_value(attribute))
            if value == "child_of":
                return _CHILD_OF
    return _FOLLOWS_FROM


def _tag_value_text(jaeger_key_value: bytes) -> str:
    """A Jaeger KeyValue's value as text (service.name and opentracing.ref_type are strings in practice)."""
    tag = model_pb2.KeyValue.FromString(jaeger_key_value)
    kind = tag.v_type
    if kind == model_pb2.STRING:
        return tag.v_str
    if kind == model_pb2.BOOL:
        return "true" if tag.v_bool else "false"
    if kind == model_pb2.INT64:
        return str(tag.v_int64)
    if kind == model_pb2.FLOAT64:
        return repr(tag.v_float64)
    return tag.v_binary.hex()
