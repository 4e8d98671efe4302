"""A request's items (spans, log records, metric data points) as their own serialized bytes, for the scanner.

The request's bytes (the receiver's when still exact, else one serialization) are parsed once more, in C, as an
item view (``gateway.protos.otelgw.item_views``): the same request with each item left as bytes. A view parses
exactly like OTLP (same items, same order), so the n-th bytes are the n-th item of the parsed batch. The scanner
runs over the items' bytes joined, and a hit's offset names its item by bisection, with no Python loop over the
items. The parts of the request outside every item (resource, scope, schema URLs, fields this schema does not
know) are scanned too, as a few more parts: a hit there must be looked at by the caller.

After redaction the same view gives the request's new bytes (``splice``): each changed item's new serialization
in place of its old bytes, the view serialized again (in C, mostly copying). The result parses to the redacted
batch when the view held the envelopes exactly as the batch has them (``Items.exact``): every resource and scope
the view keeps as bytes is the batch's own serialization of it. That fails (and the caller forgets the bytes
instead) when an envelope was changed (its attributes redacted), occurs twice on the wire (the parser merges
both, the view keeps the last), is present but empty (the view, having no presence for bytes, drops it), or
was encoded in another field order than the parser's.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway import Signal
from gateway.protos.otelgw import item_views_pb2 as views

__all__ = ["Items", "metric_points", "splice", "split"]


@dataclass
class Items:
    #: The bytes of every item in request order, then of every envelope (everything outside the items).
    parts: list[bytes]
    #: How many of ``parts`` are items.
    count: int
    #: Per scope, the flat index of its first item and (resource index, scope index), in order.
    starts: list[int]
    scopes: list[tuple[int, int]]
    #: Whether every resource and scope in the bytes is exactly the batch's (see the module docstring), so a
    #: ``splice`` of these bytes parses to the batch once its changed items are put in.
    exact: bool = False

    def address(self, index: int) -> tuple[int, int, int]:
        """(resource, scope, item) indexes of the item at flat ``index``."""
        at = bisect.bisect_right(self.starts, index) - 1
        i, j = self.scopes[at]
        return i, j, index - self.starts[at]


def _view(data: bytes, signal: Signal) -> tuple[Any, str, str, str]:
    """The item view of the traces or logs request ``data``, and the names of its repeated fields down to items."""
    if signal is Signal.TRACES:
        return views.TracesItems.FromString(data), "resource_spans", "scope_spans", "spans"
    return views.LogsItems.FromString(data), "resource_logs", "scope_logs", "log_records"


def split(data: bytes, signal: Signal, batch: Any) -> Items:
    """The items of the traces or logs request ``batch``, serialized as ``data``; see the module docstring."""
    request, outer, middle, inner = _view(data, signal)
    parts: list[bytes] = []
    envelopes: list[bytes] = []
    starts: list[int] = []
    scopes: list[tuple[int, int]] = []
    exact = True
    for i, (resource, parsed_resource) in enumerate(zip(getattr(request, outer), getattr(batch, outer),
                                                         strict=True)):
        for j, (scope, parsed_scope) in enumerate(zip(getattr(resource, middle), getattr(parsed_resource, middle),
                                                      strict=True)):
            starts.append(len(parts))
            scopes.append((i, j))
            parts.extend(getattr(scope, inner))
            # What is left of the view is the scope's envelope: its schema URL and fields this schema does not
            # know. The scope itself comes from the parsed batch, where repeated occurrences have been merged.
            scope.ClearField(inner)
            envelopes.append(scope.SerializeToString())
            own = parsed_scope.scope.SerializeToString()
            envelopes.append(own)
            exact = exact and _same(scope.scope, own, parsed_scope, "scope")
        resource.ClearField(middle)
        envelopes.append(resource.SerializeToString())
        own = parsed_resource.resource.SerializeToString()
        envelopes.append(own)
        exact = exact and _same(resource.resource, own, parsed_resource, "resource")
    request.ClearField(outer)
    envelopes.append(request.SerializeToString())  # fields of the request itself this schema does not know
    count = len(parts)
    parts.extend(envelopes)
    return Items(parts, count, starts, scopes, exact)


def _same(held: bytes, own: bytes, parent: Any, name: str) -> bool:
    """Whether the view's bytes ``held`` of envelope ``name`` parse to what ``parent`` has there (``own``, its
    serialization): equal bytes, and an empty one only when the batch has none (not one present but empty)."""
    return held == own and (bool(own) or not parent.HasField(name))


def splice(data: bytes, signal: Signal, items: Items, changed: dict[int, bytes]) -> bytes:
    """The traces or logs request serialized as ``data`` (split as ``items``), with the items at the flat
    indexes of ``changed`` replaced by the bytes given there. Parses to the changed batch when ``items.exact``."""
    request, outer, middle, inner = _view(data, signal)
    resources = getattr(request, outer)
    scope: tuple[int, int] | None = None
    of_scope: Any = None
    for index in sorted(changed):
        i, j, k = items.address(index)
        if scope != (i, j):  # one wrapper per scope, not per item
            scope, of_scope = (i, j), getattr(getattr(resources[i], middle)[j], inner)
        of_scope[k] = changed[index]
    spliced: bytes = request.SerializeToString()
    return spliced


def metric_points(data: bytes) -> Iterator[bytes]:
    """The data points of the serialized metrics request ``data``, each as bytes, in request order."""
    request = views.MetricsItems.FromString(data)
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    yield from getattr(metric, kind).data_points
