"""OTLP logs → Loki streams, with the contrib lokiexporter's rules.

- Labels, in priority order for the ``max_labels`` cap: ``job`` (service.namespace/service.name), ``instance``
  (service.instance.id), configured resource labels, ``loki.resource.labels`` hint, ``level`` (from
  severity_number), configured attribute labels, ``loki.attribute.labels`` hint, ``exporter="OTLP"``.
- Hints: ``loki.resource.labels`` (a resource or record attribute) and ``loki.attribute.labels`` (a record
  attribute) name the attributes to promote, comma-separated or as an array; ``loki.tenant`` names the
  attribute whose value is the tenant, and ``loki.format`` is json | logfmt | raw. As in the contrib exporter,
  these two are looked up on the resource first, then on the record, and so is the attribute loki.tenant names.
  Hint and promoted attributes leave the line.
- Timestamp: the record's time, else its observed time, else now. Entries of a stream are sorted by it.
- trace_id and span_id (hex) go to structured metadata, so Grafana links the line to its trace.
- the record's event (``LogRecord.event_name``, else an ``event.name`` attribute) goes into the line and into
  structured metadata as ``event_name``.

The batch is read through a wire-compatible view (``gateway.protos.otelgw.otlp_views_pb2``): each attribute
arrives as bytes and is decoded once per distinct value (cached), and per-resource work (resource labels,
the ``resources`` JSON) is done once per resource, not per record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from gateway import any_value_to_python
from gateway.protos.otelgw import otlp_views_pb2 as views

from .config import TENANT, Config
from .labels import LEVELS, Label, LabelSet, cap, label_name
from .lines import Ids, LineWriter

__all__ = ["ATTRIBUTES", "RESOURCE", "Attribute", "Entry", "Resource", "Streams", "Translator", "hint_names"]

CACHE_ENTRIES = 16_384
RESOURCE, ATTRIBUTES = "resource", "attributes"
_RESOURCE_LABELS, _ATTRIBUTE_LABELS = "loki.resource.labels", "loki.attribute.labels"
_TENANT, _FORMAT = "loki.tenant", "loki.format"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

#: One log line: timestamp (ns), line, structured metadata pairs.
Entry = tuple[int, str, tuple[tuple[str, str], ...]]
#: One tenant's streams: label-set text → (its labels, its entries sorted by time).
Streams = dict[str, tuple[LabelSet, list[Entry]]]


@dataclass(frozen=True)
class Attribute:
    """One distinct attribute, decoded once."""

    key: str
    value: Any  # JSON-ready Python
    text: str  # as a label value or logfmt value: strings as they are, everything else as JSON
    json_pair: str  # '"key":value' for the json line
    hint: bool  # a loki.* hint, which never reaches the line


def _event_attribute(attributes: list[Attribute]) -> str:
    for attribute in attributes:
        if attribute.key == "event.name":
            return attribute.text
    return ""


@dataclass
class Resource:
    """One ResourceLogs' share of the work, done once for all its records."""

    attributes: list[Attribute]
    by_key: dict[str, Attribute]
    labels: list[Label]  # job, instance, configured and hinted resource labels, in priority order
    format: str
    tenant: str | None  # None: the tenant hint names a missing attribute, or the value is not a valid tenant
    #: The resource's loki.tenant hint names an attribute it does not have: each record must have it.
    tenant_from_record: bool = False
    label_key: tuple[Any, ...] = ()  # the labels as a cache key
    #: The ``resources`` JSON object's members, per set of attributes that left the line.
    fragments: dict[frozenset[tuple[str, str]], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label_key = tuple(_label_key(label) for label in self.labels)

    def json_fragment(self, removed: frozenset[tuple[str, str]]) -> str:
        fragment = self.fragments.get(removed)
        if fragment is None:
            fragment = self.fragments[removed] = ",".join(
                a.json_pair for a in self.attributes if not a.hint and (RESOURCE, a.key) not in removed)
        return fragment


def hint_names(value: Any) -> list[str]:
    """A hint's value as attribute names: ``"a, b"`` or ``["a", "b"]``."""
    items = value if isinstance(value, list) else str(value).split(",")
    return [name for name in (str(item).strip() for item in items) if name]


class Translator:
    """Per-exporter caches; ``translate`` groups one batch's records into streams per tenant."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._attributes: dict[bytes, Attribute] = {}
        self._label_sets: dict[tuple[Any, ...], LabelSet] = {}
        self._lines = LineWriter()
        self._overflow_to_metadata = config.structured_metadata and config.label_overflow == "structured_metadata"
        self._default = {name: config.default_label(name) for name in ("exporter", "job", "instance", "level")}

    def translate(self, request: ExportLogsServiceRequest) -> tuple[dict[str, Streams], int, str]:
        """The streams of each tenant, the records left out, and why."""
        tenants: dict[str, Streams] = {}
        rejected, reason = 0, ""
        now = time.time_ns()
        ids_as_metadata = self.config.structured_metadata
        get, decode, line_of = self._attributes.get, self._decode, self._lines.line
        view = views.LogsView.FromString(request.SerializeToString())
        for resource_logs in view.resource_logs:
            resource = self._resource(resource_logs.resource)
            for scope_logs in resource_logs.scope_logs:
                scope = self._lines.scope(scope_logs.scope)
                for record in scope_logs.log_records:
                    attributes = [get(a) or decode(a) for a in record.attributes]
                    tenant, labels, line_format = self._labels(resource, attributes, record.severity_number)
                    if tenant is None:
                        rejected += 1
                        reason = "the loki.tenant hint names a missing attribute or an invalid tenant id"
                        continue
                    trace_id, span_id = record.trace_id, record.span_id
                    ids = Ids(trace_id.hex() if trace_id else "", span_id.hex() if span_id else "")
                    # The event (LogRecord.event_name, or the older event.name attribute) tells records apart
                    # when redaction has replaced the body by its length.
                    event = record.event_name or _event_attribute(attributes)
                    line = line_of(line_format, record, ids, attributes, labels.removed, resource, scope, event)
                    metadata = labels.overflow
                    if ids_as_metadata and (trace_id or span_id):
                        metadata = ids.metadata() + metadata
                    if ids_as_metadata and event:
                        metadata = (*metadata, ("event_name", event))
                    timestamp = record.time_unix_nano or record.observed_time_unix_nano or now
                    streams = tenants.get(tenant)
                    if streams is None:
                        streams = tenants[tenant] = {}
                    stream = streams.get(labels.text)
                    if stream is None:
                        stream = streams[labels.text] = (labels, [])
                    stream[1].append((timestamp, line, metadata))
        for streams in tenants.values():
            for _, entries in streams.values():
                entries.sort(key=_timestamp)
        return tenants, rejected, reason

    def _decode(self, raw: bytes) -> Attribute:
        if len(self._attributes) >= CACHE_ENTRIES:
            self._attributes.clear()
        kv = KeyValue.FromString(raw)
        value = any_value_to_python(kv.value)
        text = value if isinstance(value, str) else _dumps(value)
        attribute = Attribute(kv.key, value, text, f"{_dumps(kv.key)}:{_dumps(value)}", kv.key.startswith("loki."))
        self._attributes[raw] = attribute
        return attribute

    def _resource(self, resource: views.ResourceView) -> Resource:
        attributes = [self._attributes.get(a) or self._decode(a) for a in resource.attributes]
        by_key = {a.key: a for a in attributes}
        labels = []
        if self._default["job"] and "service.name" in by_key:
            name = by_key["service.name"].text
            namespace = by_key.get("service.namespace")
            labels.append(Label("job", f"{namespace.text}/{name}" if namespace else name))
        if self._default["instance"] and "service.instance.id" in by_key:
            labels.append(Label("instance", by_key["service.instance.id"].text))
        labels.extend(self._promote(RESOURCE, by_key, self.config.labels.resource.items()))
        hint = by_key.get(_RESOURCE_LABELS)
        if hint is not None:
            labels.extend(self._promote(RESOURCE, by_key, ((n, "") for n in hint_names(hint.value))))
        line_format = by_key[_FORMAT].text if _FORMAT in by_key else self.config.format
        hint = by_key.get(_TENANT)
        from_record = hint is not None and hint.text not in by_key
        return Resource(attributes, by_key, labels, line_format, self._tenant(by_key, {}), from_record)

    def _tenant(self, resource: dict[str, Attribute], record: dict[str, Attribute]) -> str | None:
        """The contrib exporter's lookup: the hint, then the attribute it names, on the resource first."""
        hint = resource.get(_TENANT) or record.get(_TENANT)
        if hint is None:
            return self.config.tenant_id
        source = resource.get(hint.text) or record.get(hint.text)
        if source is None or not _valid_tenant(source.text):
            return None
        return source.text

    @staticmethod
    def _promote(scope: str, by_key: dict[str, Attribute], names: Iterable[tuple[str, str]]) -> list[Label]:
        return [Label(label or label_name(key), by_key[key].text, (scope, key))
                for key, label in names if key in by_key]

    def _labels(self, resource: Resource, attributes: list[Attribute], severity: int
                ) -> tuple[str | None, LabelSet, str]:
        """The record's tenant, labels after the cap, and line format."""
        level = LEVELS[severity] if self._default["level"] and 0 < severity < len(LEVELS) else ""
        configured = self.config.labels.attributes
        if not configured and not resource.tenant_from_record and not any(a.hint for a in attributes):
            key: tuple[Any, ...] = (resource.label_key, level)
            labels = self._label_sets.get(key) or self._cap(key, resource.labels, level, [])
            return resource.tenant, labels, resource.format
        by_key = {a.key: a for a in attributes}
        hinted = []  # resource attributes a record's loki.resource.labels promotes
        if _RESOURCE_LABELS in by_key:
            names = ((n, "") for n in hint_names(by_key[_RESOURCE_LABELS].value))
            hinted = self._promote(RESOURCE, resource.by_key, names)
        promoted = self._promote(ATTRIBUTES, by_key, configured.items())
        if _ATTRIBUTE_LABELS in by_key:
            names = ((n, "") for n in hint_names(by_key[_ATTRIBUTE_LABELS].value))
            promoted += self._promote(ATTRIBUTES, by_key, names)
        line_format = resource.format if _FORMAT in resource.by_key or _FORMAT not in by_key else by_key[_FORMAT].text
        tenant = self._tenant(resource.by_key, by_key)
        key = (resource.label_key, level, *(_label_key(label) for label in hinted), None,
               *(_label_key(label) for label in promoted))
        labels = self._label_sets.get(key) or self._cap(key, resource.labels + hinted, level, promoted)
        return tenant, labels, line_format

    def _cap(self, key: tuple[Any, ...], resource_labels: list[Label], level: str,
             promoted: list[Label]) -> LabelSet:
        ordered = [*resource_labels, Label("level", level), *promoted]
        if self._default["exporter"]:
            ordered.append(Label("exporter", "OTLP"))
        labels = cap(ordered, self.config.max_labels, self._overflow_to_metadata)
        if len(self._label_sets) >= CACHE_ENTRIES:
            self._label_sets.clear()
        self._label_sets[key] = labels
        return labels


def _label_key(label: Label) -> tuple[str, str, tuple[str, str] | None]:
    return label.name, label.value, label.source


def _timestamp(entry: Entry) -> int:
    return entry[0]


def _valid_tenant(tenant: str) -> bool:
    return bool(TENANT.match(tenant))
