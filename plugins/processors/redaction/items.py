"""A traces or logs request's items (spans, log records) and envelopes as bytes, for the scanner and the splice.

Two twins find them in the request's bytes (the receiver's when still exact, else one serialization):

- **In C** (``gateway.helpers._spanscan``, when built): one walk over the bytes gives the byte ranges of every
  item in request order, of all envelope content (resource and scope fields, schema URLs, fields this schema
  does not know, at any level) and, per scope, the flat index of its first item. The scanner runs over the
  request's bytes themselves (no join, no copy), and each hit is mapped by bisection to the items it overlaps
  (ranges relative to the item) and to "envelope" when it overlaps envelope content. What is left is framing:
  the tag and length of an item, a scope or a resource, which holds no text anyone sent, so a hit only there
  flags nothing (a real secret lies inside some value, and every value lies inside an item or an envelope
  field). After redaction ``splice`` puts the changed items' new bytes in place and rewrites the length of
  every item, scope and resource around them; everything else, envelopes included, is copied byte for byte.
  So the result parses to the changed batch whenever the bytes were exact for the batch and no envelope was
  changed (then the caller forgets the bytes): ``Items.exact`` is always true here.
- **In Python** (the reference, and what runs without the extension): the bytes are parsed once more, in C,
  as an item view (``gateway.protos.otelgw.item_views``): the same request with each item left as bytes. A
  view parses exactly like OTLP (same items, same order), so the n-th bytes are the n-th item of the parsed
  batch. The scanner runs over the items' bytes joined with the envelopes (re-serialized from the view), and
  ``prefilter.bucket`` names each hit's part. Its splice assigns the changed items in the view and serializes
  it again, which re-serializes the envelopes: the result parses to the redacted batch only when every
  resource and scope the view keeps as bytes is the batch's own serialization of it (``Items.exact``). That
  fails (and the caller forgets the bytes instead) when an envelope occurs twice on the wire (the parser
  merges both, the view keeps the last), is present but empty (the view, having no presence for bytes, drops
  it), or was encoded in another field order than the parser's.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from gateway import Signal, spanscan
from gateway.protos.otelgw import item_views_pb2 as views

from .prefilter import Hit, RawHit, bucket

__all__ = ["Items", "metric_points", "splice", "split", "split_python"]


class Items(ABC):
    """The items of one request; see the module docstring. Built by ``split`` (``_WireItems``, the C walk) or
    ``split_python`` (``_ViewItems``, the item view)."""

    #: How many items the request has.
    count: int
    #: Per scope, the flat index of its first item and (resource index, scope index), in order.
    starts: list[int]
    scopes: list[tuple[int, int]]
    #: Whether a ``splice`` of these bytes parses to the batch once its changed items are put in (given the
    #: bytes were exact for the batch and no envelope changed).
    exact: bool
    #: The bytes the scanner runs over; ``locate`` takes hits on them.
    text: bytes

    def address(self, index: int) -> tuple[int, int, int]:
        """(resource, scope, item) indexes of the item at flat ``index``."""
        at = bisect.bisect_right(self.starts, index) - 1
        i, j = self.scopes[at]
        return i, j, index - self.starts[at]

    @abstractmethod
    def item(self, index: int) -> bytes:
        """The serialized item at flat ``index``, as the request holds it."""

    @abstractmethod
    def locate(self, hits: Iterable[RawHit]) -> tuple[dict[int, Hit], bool]:
        """The hits (on ``text``) per flat item index, with ranges relative to the item, and whether any hit
        overlaps envelope content."""


class _WireItems(Items):
    """The C twin: ranges of the request's own bytes (``_spanscan.request_items``)."""

    def __init__(self, data: bytes) -> None:
        assert spanscan is not None
        bounds, envelope, scopes = spanscan.request_items(data)
        self.text = self._data = data
        #: [start, end, start, end, ...] of every item's payload, then of every envelope range, in byte order:
        #: an offset lies inside a range exactly when a bisection from the right gives an odd position.
        self._bounds: list[int] = bounds
        self._envelope: list[int] = envelope
        self.count = len(bounds) // 2
        self.starts = [first for first, _, _ in scopes]
        self.scopes = [(i, j) for _, i, j in scopes]
        self.exact = True

    def item(self, index: int) -> bytes:
        return self._data[self._bounds[2 * index]:self._bounds[2 * index + 1]]

    def locate(self, hits: Iterable[RawHit]) -> tuple[dict[int, Hit], bool]:
        bounds, envelope = self._bounds, self._envelope
        right, left = bisect.bisect_right, bisect.bisect_left
        located: dict[int, Hit] = {}
        in_envelope = False
        for first, last, mask in hits:
            end = last + 1
            at = right(bounds, first)
            places: Iterable[tuple[int, int, int]]
            if at & 1 and end <= bounds[at]:  # the common case: inside one item
                places = ((at >> 1, bounds[at - 1], bounds[at]),)
            else:  # from the item holding (or next after) the first byte to the last item starting before ``end``
                places = tuple((index, bounds[2 * index], bounds[2 * index + 1])
                               for index in range(at >> 1, (left(bounds, end) + 1) >> 1))
            for index, start, stop in places:
                if start == stop:
                    continue  # an empty item holds nothing
                hit = located.get(index)
                span = (max(first, start) - start, min(end, stop) - start)
                if hit is None:
                    located[index] = Hit(mask, [span])
                else:
                    hit.mask |= mask
                    hit.ranges.append(span)
            if not in_envelope:
                at = right(envelope, first)
                in_envelope = bool(at & 1) or (at < len(envelope) and envelope[at] < end)
        return located, in_envelope


class _ViewItems(Items):
    """The Python twin: the items' bytes and the envelopes' as parts, from the item view."""

    def __init__(self, parts: list[bytes], count: int, starts: list[int], scopes: list[tuple[int, int]],
                 exact: bool) -> None:
        #: The bytes of every item in request order, then of every envelope (everything outside the items).
        self.parts = parts
        self.count, self.starts, self.scopes, self.exact = count, starts, scopes, exact
        self.text = b"".join(parts)

    def item(self, index: int) -> bytes:
        return self.parts[index]

    def locate(self, hits: Iterable[RawHit]) -> tuple[dict[int, Hit], bool]:
        located = bucket(self.parts, hits)
        count = self.count
        in_envelope = any(index >= count for index in located)
        return {index: hit for index, hit in located.items() if index < count}, in_envelope


def _view(data: bytes, signal: Signal) -> tuple[Any, str, str, str]:
    """The item view of the traces or logs request ``data``, and the names of its repeated fields down to items."""
    if signal is Signal.TRACES:
        return views.TracesItems.FromString(data), "resource_spans", "scope_spans", "spans"
    return views.LogsItems.FromString(data), "resource_logs", "scope_logs", "log_records"


def split(data: bytes, signal: Signal, batch: Any) -> Items:
    """The items of the traces or logs request ``batch``, serialized as ``data``: in C when the extension is
    built, else (and for bytes the C walk refuses, such as a group-encoded unknown field) by ``split_python``."""
    items = split_wire(data)
    return items if items is not None else split_python(data, signal, batch)


def split_wire(data: bytes) -> Items | None:
    """The items of a request held only as bytes (no parsed batch), or None where that takes the parse: no C
    extension, or bytes the C walk refuses."""
    if spanscan is None:
        return None
    try:
        return _WireItems(data)
    except ValueError:  # well-formed for upb but not for the walk (a group-encoded unknown field): the view takes it
        return None


def split_python(data: bytes, signal: Signal, batch: Any) -> Items:
    """The Python twin of ``_spanscan.request_items``; see the module docstring."""
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
    return _ViewItems(parts, count, starts, scopes, exact)


def _same(held: bytes, own: bytes, parent: Any, name: str) -> bool:
    """Whether the view's bytes ``held`` of envelope ``name`` parse to what ``parent`` has there (``own``, its
    serialization): equal bytes, and an empty one only when the batch has none (not one present but empty)."""
    return held == own and (bool(own) or not parent.HasField(name))


def changed_items(items: Items, walked: Iterable[tuple[int, Any]]) -> dict[int, bytes]:
    """Flat index → new serialization of each walked item (its flat index in ``items``, its message) whose
    serialization is no longer its bytes in the request: what ``splice`` puts in."""
    changed: dict[int, bytes] = {}
    for index, message in walked:
        new = message.SerializeToString()
        if new != items.item(index):
            changed[index] = new
    return changed


def splice(data: bytes, signal: Signal, items: Items, changed: dict[int, bytes]) -> bytes:
    """The traces or logs request serialized as ``data`` (split as ``items``), with the items at the flat
    indexes of ``changed`` replaced by the bytes given there. Parses to the changed batch when ``items.exact``
    (and no envelope changed)."""
    if isinstance(items, _WireItems):
        assert spanscan is not None
        spliced: bytes = spanscan.splice_items(data, sorted(changed.items()))
        return spliced
    return splice_python(data, signal, items, changed)


def splice_python(data: bytes, signal: Signal, items: Items, changed: dict[int, bytes]) -> bytes:
    """The Python twin of ``_spanscan.splice_items``: the changed items assigned in the item view, which is
    serialized again (in C, mostly copying)."""
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
