"""The log line, in the three formats of the contrib lokiexporter (``loki.format``): json, logfmt, raw.

- json: ``{"body":..,"event_name":..,"traceid":..,"spanid":..,"severity":..,"flags":..,"attributes":{..},
  "resources":{..},"instrumentation_scope":{"name":..,"version":..}}``, empty members left out, ids in hex.
- logfmt: ``msg=<body>`` (a map body gives one pair per key), ``event_name``, ``traceID``, ``spanID``, ``severity``,
  ``flags``, then ``attribute_<key>``, ``resource_<key>``, ``instrumentation_scope_name`` / ``_version``.
- raw: the body alone (non-string bodies as JSON).

Attributes that became labels (or structured metadata) and ``loki.*`` hints are not written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway import any_value_to_python
from gateway.protos.otelgw import otlp_views_pb2 as views

if TYPE_CHECKING:
    from .translate import Attribute, Resource

__all__ = ["Ids", "LineWriter", "Scope", "body_value", "logfmt_value"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NEEDS_QUOTES = re.compile(r'[\s="\\]|[^\x21-\x7e\u00a0-\U0010ffff]')
_LOGFMT_KEY = re.compile(r'[\s="]')


class Ids(NamedTuple):
    """A record's trace and span ids in hex; empty when absent."""

    trace_id: str
    span_id: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """As structured metadata, which is how Grafana links the line to its trace."""
        if self.trace_id and self.span_id:
            return ("trace_id", self.trace_id), ("span_id", self.span_id)
        return (("trace_id", self.trace_id),) if self.trace_id else (("span_id", self.span_id),)


@dataclass(frozen=True)
class Scope:
    json: str  # the instrumentation_scope object, or ""
    pairs: tuple[tuple[str, str], ...]  # its logfmt pairs


def logfmt_value(value: str) -> str:
    """Quoted (with JSON escapes) only when it has spaces, ``=``, quotes or control characters, or is empty."""
    return _dumps(value) if not value or _NEEDS_QUOTES.search(value) else value


def _logfmt_key(key: str) -> str:
    return _LOGFMT_KEY.sub("_", key)


class LineWriter:
    def __init__(self) -> None:
        self._scopes: dict[tuple[str, str], Scope] = {}

    def scope(self, scope: views.ScopeView) -> Scope:
        key = (scope.name, scope.version)
        cached = self._scopes.get(key)
        if cached is None:
            members = {name: value for name, value in zip(("name", "version"), key, strict=True) if value}
            cached = Scope(_dumps(members) if members else "",
                           tuple((f"instrumentation_scope_{name}", value) for name, value in members.items()))
            if len(self._scopes) < 4096:
                self._scopes[key] = cached
        return cached

    def line(self, line_format: str, record: views.LogRecordView, ids: Ids, attributes: list[Attribute],
             removed: frozenset[tuple[str, str]], resource: Resource, scope: Scope, event: str = "") -> str:
        if line_format == "raw":
            body = body_value(record.body)
            return body if isinstance(body, str) else ("" if body is None else _dumps(body))
        if line_format == "logfmt":
            return self._logfmt(record, ids, attributes, removed, resource, scope, event)
        return self._json(record, ids, attributes, removed, resource, scope, event)

    @staticmethod
    def _json(record: views.LogRecordView, ids: Ids, attributes: list[Attribute],
              removed: frozenset[tuple[str, str]], resource: Resource, scope: Scope, event: str) -> str:
        parts = []
        if record.body:
            body = body_value(record.body)
            parts.append('"body":' + (encode_basestring(body) if isinstance(body, str) else _dumps(body)))
        if event:
            parts.append('"event_name":' + encode_basestring(event))
        if ids.trace_id:
            parts.append(f'"traceid":"{ids.trace_id}"')
        if ids.span_id:
            parts.append(f'"spanid":"{ids.span_id}"')
        severity = record.severity_text
        if severity:
            parts.append('"severity":' + encode_basestring(severity))
        flags = record.flags
        if flags:
            parts.append(f'"flags":{flags}')
        if attributes:
            members = ",".join([a.json_pair for a in attributes
                                if not a.hint and (not removed or ("attributes", a.key) not in removed)])
            if members:
                parts.append('"attributes":{' + members + "}")
        resources = resource.json_fragment(removed)
        if resources:
            parts.append('"resources":{' + resources + "}")
        if scope.json:
            parts.append('"instrumentation_scope":' + scope.json)
        return "{" + ",".join(parts) + "}"

    @staticmethod
    def _logfmt(record: views.LogRecordView, ids: Ids, attributes: list[Attribute],
                removed: frozenset[tuple[str, str]], resource: Resource, scope: Scope, event: str) -> str:
        pairs: list[tuple[str, str]] = []
        body = body_value(record.body)
        if isinstance(body, dict):
            pairs.extend(_flatten("", body))
        elif body is not None:
            pairs.append(("msg", body if isinstance(body, str) else _dumps(body)))
        if event:
            pairs.append(("event_name", event))
        if ids.trace_id:
            pairs.append(("traceID", ids.trace_id))
        if ids.span_id:
            pairs.append(("spanID", ids.span_id))
        if record.severity_text:
            pairs.append(("severity", record.severity_text))
        if record.flags:
            pairs.append(("flags", str(record.flags)))
        for prefix, scope_name, items in (("attribute_", "attributes", attributes),
                                          ("resource_", "resource", resource.attributes)):
            for a in items:
                if not a.hint and (scope_name, a.key) not in removed:
                    pairs.extend(_flatten(prefix + a.key, a.value))
        pairs.extend(scope.pairs)
        return " ".join(f"{_logfmt_key(key)}={logfmt_value(value)}" for key, value in pairs)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Maps become one pair per key (``prefix_key``); everything else one pair (JSON unless a string)."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out.extend(_flatten(f"{prefix}_{key}" if prefix else str(key), item))
        return out
    return [(prefix, value if isinstance(value, str) else _dumps(value))]


def body_value(body: bytes) -> Any:
    """A serialized AnyValue body as JSON-ready Python (a short plain string without parsing a message)."""
    if len(body) > 2 and body[0] == 0x0A and body[1] < 0x80 and len(body) == 2 + body[1]:
        return body[2:].decode("utf-8", "replace")
    return any_value_to_python(AnyValue.FromString(body)) if body else None
