"""Routing keys other than the traces' wire-split ``traceID``: which backend each part of a request goes to.

The key decides how much of a request moves as one piece, and so how much Python looks at:

- ``service`` and ``resource``: whole resource envelopes (one key per resource: ``service.name``, or the
  resource's serialized attributes). The Collector's choice for keeping a service's data on one backend.
- ``metric``: each metric with its data points (key: the metric name), so every series of a metric meets on
  one backend.
- ``streamID``: each data point (key: resource, scope, metric name and the point's attributes, serialized), so
  one series always reaches the same backend: what a stateful consumer of a series (a KPI, a cumulative-to-delta
  conversion) needs, spreading the series of one metric over every backend.
- ``traceID`` for logs: each log record by its trace id (records without one are spread by their resource).
- ``attributes``: spans and log records by the values of ``routing_attributes`` (looked up on the item, then its
  resource; items with none of them fall back to their trace id); metrics by those of the resource, whole.

Items are copied into per-backend requests with their resource and scope headers; a request whose items all go to
one backend is passed on as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway import Batch, Signal

__all__ = ["ROUTING_KEYS", "route"]

#: The routing keys each signal supports (the first is the default).
ROUTING_KEYS: dict[Signal, tuple[str, ...]] = {
    Signal.TRACES: ("traceID", "service", "resource", "attributes"),
    Signal.METRICS: ("service", "resource", "metric", "streamID", "attributes"),
    Signal.LOGS: ("service", "traceID", "resource", "attributes"),
}

_FIELDS = {Signal.TRACES: ("resource_spans", "scope_spans", "spans"),
           Signal.METRICS: ("resource_metrics", "scope_metrics", "metrics"),
           Signal.LOGS: ("resource_logs", "scope_logs", "log_records")}

EndpointFor = Callable[[bytes], str]


def _service(resource: Any) -> bytes:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.SerializeToString()
    return b""


class _Out:
    """Per-backend requests being built, each keeping a copy of the resource and scope headers it needs."""

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.requests: dict[str, Batch] = {}
        self._scopes: dict[tuple[str, int, int], Any] = {}

    def resource(self, endpoint: str, envelope: Any) -> None:
        request = self.requests.get(endpoint)
        if request is None:
            request = self.requests[endpoint] = self.signal.request_type()
        getattr(request, _FIELDS[self.signal][0]).append(envelope)

    def scope(self, endpoint: str, resource_envelope: Any, scope_envelope: Any) -> Any:
        """The copy of ``scope_envelope`` (inside a copy of ``resource_envelope``) in ``endpoint``'s request."""
        key = (endpoint, id(resource_envelope), id(scope_envelope))
        scope = self._scopes.get(key)
        if scope is None:
            request = self.requests.get(endpoint)
            if request is None:
                request = self.requests[endpoint] = self.signal.request_type()
            resource_field, scope_field, _ = _FIELDS[self.signal]
            resource = getattr(request, resource_field).add()
            resource.resource.CopyFrom(resource_envelope.resource)
            resource.schema_url = resource_envelope.schema_url
            scope = getattr(resource, scope_field).add()
            scope.scope.CopyFrom(scope_envelope.scope)
            scope.schema_url = scope_envelope.schema_url
            self._scopes[key] = scope
        return scope


def route(signal: Signal, batch: Batch, key: str, endpoint_for: EndpointFor,
          routing_attributes: Iterable[str] = ()) -> dict[str, Batch]:
    """``batch`` cut into one request per backend."""
    resource_field, scope_field, item_field = _FIELDS[signal]
    out = _Out(signal)
    attributes = tuple(routing_attributes)
    for resource in getattr(batch, resource_field):
        if key in ("service", "resource") or (key == "attributes" and signal is Signal.METRICS):
            if key == "service":
                header = _service(resource.resource)
            elif key == "resource":
                header = resource.resource.SerializeToString()
            else:
                header = b"\x00".join(kv.value.SerializeToString() for kv in resource.resource.attributes
                                       if kv.key in attributes)
            out.resource(endpoint_for(header), resource)
            continue
        resource_bytes = resource.resource.SerializeToString()
        for scope in getattr(resource, scope_field):
            prefix = resource_bytes + scope.scope.name.encode()
            for item in getattr(scope, item_field):
                if key == "metric":
                    getattr(out.scope(endpoint_for(item.name.encode()), resource, scope), item_field).append(item)
                elif key == "streamID":
                    _route_points(out, resource, scope, item, prefix, endpoint_for)
                else:
                    item_key = _item_key(item, resource.resource, attributes) if key == "attributes" \
                        else bytes(item.trace_id) or resource_bytes
                    getattr(out.scope(endpoint_for(item_key), resource, scope), item_field).append(item)
    if len(out.requests) == 1:
        return {next(iter(out.requests)): batch}
    return out.requests


def _item_key(item: Any, resource: Any, names: tuple[str, ...]) -> bytes:
    found = [kv.value.SerializeToString() for source in (item.attributes, resource.attributes)
             for kv in source if kv.key in names]
    return b"\x00".join(found) if found else bytes(item.trace_id)


def _route_points(out: _Out, resource: Any, scope: Any, metric: Any, prefix: bytes,
                  endpoint_for: EndpointFor) -> None:
    data = metric.WhichOneof("data")
    if data is None:
        return
    points = getattr(metric, data).data_points
    name = prefix + metric.name.encode()
    placed: dict[str, Any] = {}  # endpoint → this metric's copy (header, no points) in its request
    for point in points:
        stream = name + type(point)(attributes=point.attributes).SerializeToString()
        endpoint = endpoint_for(stream)
        copy = placed.get(endpoint)
        if copy is None:
            copy = out.scope(endpoint, resource, scope).metrics.add()
            copy.name, copy.description, copy.unit = metric.name, metric.description, metric.unit
            if metric.metadata:
                copy.metadata.extend(metric.metadata)
            target = getattr(copy, data)
            target.SetInParent()
            for field in ("aggregation_temporality", "is_monotonic"):
                if hasattr(target, field):
                    setattr(target, field, getattr(getattr(metric, data), field))
            placed[endpoint] = copy
        getattr(copy, data).data_points.append(point)
