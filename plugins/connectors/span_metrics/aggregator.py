"""Aggregation of spans into calls, duration and event metrics, as the Collector's spanmetrics connector.

Series live per resource in plain dicts keyed by tuples: (span name, kind, status code, dimension values...).
A span's attributes are scanned only when dimensions are configured, and then only to pick out the configured
keys through one dict lookup each. A series keeps its counts only: its attributes are made from its key when it
is flushed (protobuf attribute messages per series cost kilobytes each, several gigabytes at a million series),
and its bucket and exemplar containers exist only when they hold something. Memory is bounded:
``aggregation_cardinality_limit`` series per resource (the rest fold into one ``otel.metric.overflow=true``
series), ``resource_metrics_cache_size`` resources, and ``metrics_expiration`` for resources that went quiet.

Two intake paths give the same series, counts, sums (to the last bit) and overflow. Without dimensions, exemplars
and events (the defaults), ``_add_grouped`` reads five fields per span and appends the span's duration to a list
of its series; the lists are counted (``_fold_resource``) every ``FOLD_AFTER`` spans and before a flush. With any
of them, and for a resource whose spans keep making new series (``sparse``), ``_add_spans`` counts one span at a
time. tests/plugins/connectors/span_metrics/test_grouped.py holds the two paths to the same output.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import truediv
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from gateway import OVERFLOW_ATTRIBUTE, hashable_value, key_value, spanscan, wire_bytes
from gateway.protos.otelgw import item_views_pb2 as views

from .config import Config, Dimension
from .histograms import ExponentialHistogram, add_in_order, count_sorted

__all__ = ["SpanAggregator"]

SPAN_KINDS = ("SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
              "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER")
STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
SCOPE_NAME = "spanmetricsconnector"
_OVERFLOW_KEY = ("\x00overflow",)
#: Series per request a flush sends: a few milliseconds of work each, so the event loop runs in between.
BATCH_SERIES = 500
_CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
_DELTA = pb.AGGREGATION_TEMPORALITY_DELTA


_Exemplar = tuple[bytes, bytes, float, int]  # trace id, span id, value, time
_NO_EXEMPLARS: tuple[_Exemplar, ...] = ()
_NO_COUNTS: list[int] = []  # shared by every series without explicit buckets; never written to
#: Below this many pending spans of one series, counting them one by one is quicker than sorting them.
_FEW = 24
#: Spans held as pending durations (about 40 bytes each) before they are counted into their series.
FOLD_AFTER = 32_768
#: A resource whose request made a new series (or overflowed) for more than one span in this many is sparse.
SPARSE = 4


class _Series:
    __slots__ = ("calls", "counts", "exemplars", "expo", "pending", "start_ns", "total")

    def __init__(self, buckets: int, expo_size: int, start_ns: int) -> None:
        self.calls = 0
        self.total = 0.0
        self.counts = [0] * buckets if buckets else _NO_COUNTS
        self.expo = ExponentialHistogram(expo_size) if expo_size else None
        #: A list once the series has an exemplar; the shared empty tuple until then (one object less per series).
        self.exemplars: list[_Exemplar] | tuple[_Exemplar, ...] = _NO_EXEMPLARS
        self.start_ns = start_ns
        #: ``end - start`` of spans not counted yet, in span order (``_add_grouped``); a list exactly while the
        #: series is in its resource's ``dirty`` list.
        self.pending: list[int] | None = None


class _Resource:
    __slots__ = ("attributes", "dirty", "events", "fallback", "index", "last_seen", "series", "service", "sparse")

    def __init__(self, attributes: Sequence[KeyValue], service: str, fallback: tuple[Any, ...]) -> None:
        self.attributes = list(attributes)
        self.service = key_value("service.name", service)  # the first attribute of each of its series
        self.fallback = fallback  # per dimension: the resource's value or the default, used when a span lacks it
        self.series: dict[tuple[Any, ...], _Series] = {}
        self.events: dict[tuple[Any, ...], _Series] = {}
        self.last_seen = time.monotonic()
        #: ``_add_grouped``: scope key -> span kind -> span name -> the pending list of the span's series, for the
        #: series in ``dirty``; both are emptied whenever those series are counted.
        self.index: dict[tuple[Any, ...], defaultdict[int, dict[str, list[int]]]] = {}
        self.dirty: list[_Series] = []
        #: Its last request made a new series (or overflowed) for more than one span in SPARSE: its spans are
        #: then counted one at a time, which costs less when nearly every span needs its series looked up.
        self.sparse = False


class SpanAggregator:
    def __init__(self, config: Config) -> None:
        self.config = config
        excluded = set(config.exclude_dimensions)
        self._use_service = "service.name" not in excluded
        self._use_name = "span.name" not in excluded
        self._use_kind = "span.kind" not in excluded
        self._use_status = "status.code" not in excluded
        self._dimensions: list[Dimension] = list(config.dimensions)
        self._dim_index = {d.name: i for i, d in enumerate(self._dimensions)}
        self._event_dims: list[Dimension] = list(config.events.dimensions) if config.events.enabled else []
        self._divider = 1e6 if config.histogram.unit == "ms" else 1e9
        self._histogram = not config.histogram.disable
        self._expo_size = config.histogram.exponential.max_size if config.histogram.exponential else 0
        self._bounds = config.bucket_bounds()
        self._buckets = 0 if self._expo_size or not self._histogram else len(self._bounds) + 1
        self._exemplars = config.exemplars.max_per_data_point if config.exemplars.enabled else 0
        self._limit = config.aggregation_cardinality_limit
        self._scopes = frozenset(config.include_instrumentation_scope)
        self._key_attributes = frozenset(config.resource_metrics_key_attributes)
        # What a span's series depends on beyond its name, kind, status and scope, or what must be kept of each
        # span: then spans are counted one at a time.
        self._per_span = bool(self._dimensions or self._exemplars or config.events.enabled)
        # The C twin groups by the span's own name and kind: with either left out of the series key, spans of
        # several groups share a series and would reach its pending list in another order.
        self._grouped_in_c = spanscan is not None and self._use_name and self._use_kind and not self._per_span
        # The attributes a flush gives most series, made once (a point copies them in).
        self._kind_attributes = [key_value("span.kind", kind) for kind in SPAN_KINDS]
        self._status_attributes = [key_value("status.code", code) for code in STATUS_CODES]
        self._resources: dict[Any, _Resource] = {}
        self._delta_starts: dict[tuple[Any, ...], int] = {}
        self._start_ns = time.time_ns()
        #: Spans counted into an overflow series because their resource reached the cardinality limit.
        self.overflowed = 0
        self.spans = 0
        self._pending = 0  # spans added by _add_grouped since the last _fold_all
        self._made = 0  # calls of _new_series: series made, and spans overflowed

    # ---------------------------------------------------------------- intake

    @property
    def series_count(self) -> int:
        return sum(len(r.series) + len(r.events) for r in self._resources.values())

    def add(self, request: ExportTraceServiceRequest) -> None:
        """Count the request's spans (see the module's docstring for the ways)."""
        groups = self._groups(request) if self._grouped_in_c else None
        resources = request.resource_spans
        self._add([(rs.resource, [self._scope_key(ss.scope) for ss in rs.scope_spans]) for rs in resources],
                  groups, lambda: resources)

    def add_wire(self, data: bytes, message: Callable[[], ExportTraceServiceRequest]) -> None:
        """Count the spans of a request held as bytes. Where the spans are grouped in C, only the resources (and
        the scopes, when they are part of the series) are parsed; ``message`` gives the request parsed, and is
        called only when a resource needs its spans counted in Python."""
        groups = None
        if self._grouped_in_c:
            try:
                groups = spanscan.span_groups(data, self._use_status)  # type: ignore[union-attr]
            except ValueError:  # a name that is not UTF-8 (only bytes no parse accepted have one): in Python
                groups = None
        if groups is None:
            self.add(message())
            return
        # Every occurrence of a resource or scope, joined: a field written twice parses to their merge, as in
        # the parse of the whole request.
        envelopes = [(Resource.FromString(b"".join(rs.resource)),
                      [self._scope_key(InstrumentationScope.FromString(b"".join(ss.scope)) if self._scopes else None)
                       for ss in rs.scope_spans])
                     for rs in views.TracesEnvelopes.FromString(data).resource_spans]
        self._add(envelopes, groups, lambda: message().resource_spans)

    def _add(self, envelopes: list[tuple[Resource, list[tuple[Any, ...]]]], groups: list[Any] | None,
             resource_spans: Callable[[], Sequence[ResourceSpans]]) -> None:
        """``envelopes``: per ResourceSpans, its resource and the series key part of each of its scopes;
        ``groups``: ``spanscan.span_groups`` of the request, or None; ``resource_spans``: the request's parsed
        ResourceSpans, asked for only where spans are counted in Python."""
        for index, (resource_message, scope_keys) in enumerate(envelopes):
            resource = self._resource(resource_message)
            if resource is None:
                continue
            if self._per_span:
                self._add_spans(resource_spans()[index], resource)
                continue
            spans, made = self.spans, self._made
            if resource.sparse:
                self._add_spans(resource_spans()[index], resource)
            elif groups is None or not self._add_groups(scope_keys, resource, groups[index]):
                self._add_grouped(resource_spans()[index], resource)
            sparse = (self._made - made) * SPARSE > self.spans - spans
            if sparse and not resource.sparse:
                self._fold_resource(resource)  # its pending spans come before the next ones, counted one by one
            resource.sparse = sparse
        if self._pending >= FOLD_AFTER:
            self._fold_all()

    def _resource(self, message: Resource) -> _Resource | None:
        service = None
        attributes = message.attributes
        for kv in attributes:
            if kv.key == "service.name":
                service = hashable_value(kv.value)
                break
        if service is None:  # as the Collector: spans of a resource without service.name are not counted
            return None
        if self._key_attributes:
            key: Any = tuple(sorted((kv.key, kv.value.SerializeToString()) for kv in attributes
                                    if kv.key in self._key_attributes))
        else:
            key = message.SerializeToString(deterministic=True)
        resources = self._resources
        resource = resources.pop(key, None)  # re-inserted below: the dict's order is least recently seen first
        if resource is None:
            if len(resources) >= self.config.resource_metrics_cache_size:
                del resources[next(iter(resources))]
            resource = _Resource(attributes, str(service), self._fallback(attributes))
        else:
            resource.last_seen = time.monotonic()
        resources[key] = resource
        return resource

    def _fallback(self, attributes: Iterable[KeyValue]) -> tuple[Any, ...]:
        values: list[Any] = [d.default for d in self._dimensions]
        for kv in attributes:
            i = self._dim_index.get(kv.key)
            if i is not None:
                values[i] = hashable_value(kv.value)
        return tuple(values)

    def _scope_key(self, scope: Any) -> tuple[Any, ...]:
        """The part of a series key that comes from the span's instrumentation scope (``scope`` may be None when
        no scope is part of any key)."""
        if self._scopes and scope.name in self._scopes:
            return (scope.name, scope.version)
        return ()

    def _groups(self, request: ExportTraceServiceRequest) -> list[list[list[Any]]] | None:
        """``spanscan.span_groups`` of the bytes the request came with, or None to count in Python: without
        them (a processor before changed the batch), serializing it costs what the C loop saves."""
        data = wire_bytes(request)
        if data is None:
            return None
        try:
            return spanscan.span_groups(data, self._use_status)  # type: ignore[union-attr]
        except ValueError:  # a name that is not UTF-8 (only bytes no parse accepted have one): count in Python
            return None

    def _add_groups(self, scope_keys: list[tuple[Any, ...]], resource: _Resource, scopes: list[list[Any]]) -> bool:
        """``_add_grouped`` with its loop over spans done in C: ``scopes`` holds, per ScopeSpans of ``rs``, its
        spans grouped by (name, kind, status code) in the order each group's first span came, with each span's
        ``end - start`` in span order. The same series are made in the same order, and each pending list gets
        the same durations in the same order, so the counts and sums are those of the other paths.

        Returns False, having counted nothing, when the resource may reach its cardinality limit: the overflow
        series is counted one span at a time (``_pending_of``), in span order across groups."""
        table = resource.series
        if self._limit and len(table) + sum(map(len, scopes)) >= self._limit:
            return False
        dirty = resource.dirty
        for scope_key, groups in zip(scope_keys, scopes, strict=True):
            for name, kind, code, durations in groups:
                key = (name, kind, code, *scope_key)
                series = table.get(key)
                if series is None:
                    series = self._new_series(table, key)
                pending = series.pending
                if pending is None:
                    series.pending = durations
                    dirty.append(series)
                else:
                    pending.extend(durations)
                self.spans += len(durations)
                self._pending += len(durations)
        return True

    def _add_grouped(self, rs: ResourceSpans, resource: _Resource) -> None:
        """Spans without dimensions, exemplars or events: listed per series first, counted per series later.

        Per span this reads the name, kind, timestamps and whether a status is set (the Status message only when
        one is: making its wrapper costs more than all the other fields), finds the pending list of its series
        through the resource's index (two dict lookups that hash no tuple: kind, then name), and appends its
        ``end - start``. The series itself is looked up, made or overflowed (``_pending_of``) on the first span of
        each kind and name since the resource's last fold, and on every span with a status code or past the
        cardinality limit, in span order: which series exist, in which order, and which spans overflow is what
        counting one span at a time gives. ``_count`` adds each list in span order, so sums are the same to the
        last bit.
        """
        has_field = Span.HasField
        check_status = self._use_status  # an excluded status.code does not split series: no need to read it
        for ss in rs.scope_spans:
            scope_key = self._scope_key(ss.scope)
            index = resource.index.get(scope_key)
            if index is None:
                index = resource.index[scope_key] = defaultdict(dict)
            spans = ss.spans
            self.spans += len(spans)
            self._pending += len(spans)
            for span in spans:
                if check_status and has_field(span, "status") and span.status.code:
                    pending = self._pending_of(resource, span, span.status.code, scope_key)
                else:
                    names = index[span.kind]
                    pending = names.get(span.name)
                    if pending is None:  # the first span of its kind and name since the last fold
                        pending = self._pending_of(resource, span, 0, scope_key)
                        if pending is not None:
                            names[span.name] = pending
                if pending is not None:
                    pending.append(span.end_time_unix_nano - span.start_time_unix_nano)

    def _pending_of(self, resource: _Resource, span: Any, code: int, scope_key: tuple[Any, ...]) -> list[int] | None:
        """The pending list a span's duration goes into, or None when the span went into the overflow series.

        The overflow series is counted here and now, one span at a time (it never has a pending list), so its sum
        adds the spans of all the series it stands for in the order they came.
        """
        key = (span.name if self._use_name else "", span.kind if self._use_kind else 0,
               code if self._use_status else 0, *scope_key)
        table = resource.series
        series = table.get(key)
        if series is None:
            series = self._new_series(table, key)
            if key not in table:
                self._count(series, [span.end_time_unix_nano - span.start_time_unix_nano])
                return None
        pending = series.pending
        if pending is None:
            pending = series.pending = []
            resource.dirty.append(series)
        return pending

    def _fold_all(self) -> None:
        for resource in self._resources.values():
            self._fold_resource(resource)
        self._pending = 0

    def _fold_resource(self, resource: _Resource) -> None:
        """Count every pending span of the resource, and empty its index."""
        for series in resource.dirty:
            self._fold(series)
            series.pending = None
        resource.dirty.clear()
        resource.index.clear()

    def _fold(self, series: _Series) -> None:
        """Count the series' pending spans, leaving its list (empty) where the index finds it."""
        diffs = series.pending
        if diffs:
            self._count(series, diffs)
            diffs.clear()

    def _count(self, series: _Series, diffs: list[int]) -> None:
        """Count spans, given ``end - start`` of each in span order, as ``_add_spans`` does one by one: the same
        calls, bucket counts and exponential histogram, and the same sum to the last bit."""
        series.calls += len(diffs)
        divider = self._divider
        if self._buckets:
            if spanscan is not None:  # the loop below, one value at a time, in C
                series.total = spanscan.count_durations(series.counts, self._bounds, diffs, divider, series.total)
                return
            if len(diffs) < _FEW:
                total = series.total
                counts, bounds = series.counts, self._bounds
                for diff in diffs:
                    value = diff / divider if diff > 0 else 0.0
                    counts[bisect.bisect_left(bounds, value)] += 1
                    total += value
                series.total = total
                return
            durations = list(map(truediv, diffs, repeat(divider)))  # a third cheaper than dividing in the loop
            ordered = sorted(durations)
            if ordered[0] < 0:  # a span that ends before it starts lasted 0
                durations = [value if value > 0 else 0.0 for value in durations]
                ordered = sorted(durations)
            series.total = add_in_order(durations, series.total)
            count_sorted(series.counts, self._bounds, ordered)
        elif self._expo_size:
            observe = series.expo.observe  # type: ignore[union-attr]
            for diff in diffs:
                observe(diff / divider if diff > 0 else 0.0)

    def _add_spans(self, rs: ResourceSpans, resource: _Resource) -> None:
        table = resource.series
        use_name, use_kind, use_status = self._use_name, self._use_kind, self._use_status
        dim_index = self._dim_index
        fallback = resource.fallback
        divider = self._divider
        bounds, buckets, expo = self._bounds, self._buckets, self._expo_size
        exemplars = self._exemplars
        events = self.config.events.enabled
        bisect_left = bisect.bisect_left
        has_field = Span.HasField
        for ss in rs.scope_spans:
            scope_key = self._scope_key(ss.scope)
            spans = ss.spans
            self.spans += len(spans)
            for span in spans:
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                duration = (end - start) / divider if end > start else 0.0
                # HasField first: most spans have no status, and reading an unset one makes a message wrapper.
                code = span.status.code if use_status and has_field(span, "status") else 0
                key: tuple[Any, ...] = (span.name if use_name else "", span.kind if use_kind else 0, code)
                if dim_index:
                    values = list(fallback)
                    for kv in span.attributes:
                        i = dim_index.get(kv.key)
                        if i is not None:
                            values[i] = hashable_value(kv.value)
                    key += tuple(values)
                if scope_key:
                    key += scope_key
                series = table.get(key)
                if series is None:
                    series = self._new_series(table, key)
                series.calls += 1
                if buckets:
                    series.counts[bisect_left(bounds, duration)] += 1
                    series.total += duration
                elif expo:
                    series.expo.observe(duration)  # type: ignore[union-attr]
                if exemplars and span.trace_id:
                    kept = series.exemplars
                    if not isinstance(kept, list):
                        kept = series.exemplars = []
                    kept.append((span.trace_id, span.span_id, duration, end))
                    if len(kept) > exemplars:
                        del kept[0]
                if events and len(span.events):
                    self._add_events(resource, span, key)

    def _new_series(self, table: dict[tuple[Any, ...], _Series], key: tuple[Any, ...]) -> _Series:
        self._made += 1
        if self._limit and len(table) >= self._limit:
            self.overflowed += 1
            series = table.get(_OVERFLOW_KEY)
            if series is None:
                series = table[_OVERFLOW_KEY] = self._make(key)
            return series
        series = table[key] = self._make(key)
        return series

    def _attributes(self, resource: _Resource, key: tuple[Any, ...], event: bool) -> list[KeyValue]:
        """A series' attributes, made from its key: (span name, kind, status, dimension values, [scope name,
        scope version]) and for an event series then ``"\x00event"`` and the event dimensions' values."""
        if key == _OVERFLOW_KEY:
            return [key_value(OVERFLOW_ATTRIBUTE, True)]
        attributes = []
        if self._use_service:
            attributes.append(resource.service)
        if self._use_name:
            attributes.append(key_value("span.name", key[0]))
        if self._use_kind:
            kind = key[1]
            attributes.append(self._kind_attributes[kind] if 0 <= kind < 6 else key_value("span.kind", str(kind)))
        if self._use_status:
            code = key[2]
            attributes.append(self._status_attributes[code] if 0 <= code < 3 else key_value("status.code", str(code)))
        dims = len(self._dimensions)
        for dimension, value in zip(self._dimensions, key[3:3 + dims], strict=False):
            if value is not None:
                attributes.append(key_value(dimension.name, value))
        # The scope's two parts follow the dimensions when include_instrumentation_scope matched; an event key
        # then has its marker and one value per event dimension after them.
        scope_parts = len(key) - 3 - dims - (1 + len(self._event_dims) if event else 0)
        if scope_parts:
            name, version = key[3 + dims:3 + dims + 2]
            attributes.append(key_value("span.instrumentation.scope.name", name))
            if version:
                attributes.append(key_value("span.instrumentation.scope.version", version))
        if event:
            for dimension, value in zip(self._event_dims, key[len(key) - len(self._event_dims):], strict=False):
                if value is not None:
                    attributes.append(key_value(dimension.name, value))
        return attributes

    def _make(self, key: tuple[Any, ...]) -> _Series:
        start = self._delta_starts.get(key, 0) if self.config.delta else 0
        return _Series(self._buckets, self._expo_size, start or time.time_ns())

    def _add_events(self, resource: _Resource, span: Any, key: tuple[Any, ...]) -> None:
        table = resource.events
        dims = self._event_dims
        for event in span.events:
            values: list[Any] = [d.default for d in dims]
            if dims:
                for kv in event.attributes:
                    for i, d in enumerate(dims):
                        if d.name == kv.key:
                            values[i] = hashable_value(kv.value)
            event_key = (*key, "\x00event", *values)
            series = table.get(event_key)
            if series is None:
                series = self._new_series(table, event_key)
            series.calls += 1

    # ---------------------------------------------------------------- output

    def build(self, now_ns: int | None = None) -> ExportMetricsServiceRequest | None:
        """The metrics to send now, in one request; None when there is nothing. See :meth:`build_batches`."""
        request = ExportMetricsServiceRequest()
        for batch in self.build_batches(now_ns, max_series=0):
            request.resource_metrics.extend(batch.resource_metrics)
        return request if request.resource_metrics else None

    def build_batches(self, now_ns: int | None = None,
                      max_series: int = BATCH_SERIES) -> Iterator[ExportMetricsServiceRequest]:
        """The metrics to send now, as requests of at most ``max_series`` series each (0: no limit). Resets delta
        state and drops expired resources.

        A caller may run the event loop between two requests (so a flush of a million series does not block
        it), and spans may then arrive: resources and series are iterated from snapshots, and a delta
        resource's tables are swapped out before its first request, so what arrives meanwhile counts towards
        the next flush, never into a table that is about to be cleared.
        """
        now_ns = now_ns or time.time_ns()
        config = self.config
        self._expire()
        temporality = _DELTA if config.delta else _CUMULATIVE
        prefix = f"{config.namespace}." if config.namespace else ""
        request = ExportMetricsServiceRequest()
        size = 0
        self._pending = 0
        for resource in list(self._resources.values()):
            # Pending spans are counted now, and the index emptied before a delta resource's tables are: a span
            # arriving while this flush is sent on finds its series afresh. (A cumulative series that got spans
            # meanwhile counts them when it is emitted.)
            self._fold_resource(resource)
            if not resource.series and not resource.events:
                continue
            # Keys and series as two lists of the objects already held, not a list of (key, series) pairs: a
            # million new pairs alive for the whole flush would make every full collection meanwhile visit them.
            tables = [(list(resource.series), list(resource.series.values()), "calls"),
                      (list(resource.events), list(resource.events.values()), "events")]
            if config.delta:
                self._remember_starts(resource, now_ns)
            for keys, values, kind in tables:
                start = 0
                while start < len(keys):
                    room = max_series - size if max_series else len(keys)
                    end = start + room
                    self._emit_part(request, resource, keys[start:end], values[start:end], kind, temporality,
                                    prefix, now_ns)
                    size += min(end, len(keys)) - start
                    start = end
                    if max_series and size >= max_series:
                        yield request
                        request, size = ExportMetricsServiceRequest(), 0
        if request.resource_metrics:
            yield request

    def _emit_part(self, request: ExportMetricsServiceRequest, resource: _Resource, keys: list[tuple[Any, ...]],
                   part: list[_Series], kind: str, temporality: Any, prefix: str, now_ns: int) -> None:
        """``part`` of a resource's series (``kind`` calls, with their durations, or events) as one
        ResourceMetrics; ``keys`` are their keys."""
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(resource.attributes)
        sm = rm.scope_metrics.add()
        sm.scope.name = SCOPE_NAME
        counter = sm.metrics.add()
        counter.name = prefix + kind
        counter.sum.is_monotonic = True
        counter.sum.aggregation_temporality = temporality
        duration = None
        if self._histogram and kind == "calls":
            duration = sm.metrics.add()
            duration.name = prefix + "duration"
            duration.unit = self.config.histogram.unit
            (duration.exponential_histogram if self._expo_size else duration.histogram
             ).aggregation_temporality = temporality
        event = kind == "events"
        for key, series in zip(keys, part, strict=True):
            if series.pending:  # spans that came while an earlier part of this flush was sent on
                self._fold(series)
            self._emit(self._attributes(resource, key, event), series, counter, duration, now_ns)

    def _emit(self, attributes: list[KeyValue], series: _Series, calls: pb.Metric, duration: pb.Metric | None,
              now_ns: int) -> None:
        point = calls.sum.data_points.add()
        point.attributes.extend(attributes)
        point.start_time_unix_nano = series.start_ns
        point.time_unix_nano = now_ns
        point.as_int = series.calls
        if series.exemplars:
            self._fill_exemplars(point.exemplars, series.exemplars)
        if duration is None:
            return
        if series.expo is not None:
            expo = duration.exponential_histogram.data_points.add()
            expo.attributes.extend(attributes)
            expo.start_time_unix_nano = series.start_ns
            expo.time_unix_nano = now_ns
            series.expo.fill(expo)
            if series.exemplars:
                self._fill_exemplars(expo.exemplars, series.exemplars)
        else:
            hist = duration.histogram.data_points.add()
            hist.attributes.extend(attributes)
            hist.start_time_unix_nano = series.start_ns
            hist.time_unix_nano = now_ns
            hist.count = series.calls
            hist.sum = series.total
            hist.explicit_bounds.extend(self._bounds)
            hist.bucket_counts.extend(series.counts)
            if series.exemplars:
                self._fill_exemplars(hist.exemplars, series.exemplars)
        if series.exemplars:
            series.exemplars = _NO_EXEMPLARS  # exemplars belong to one flush interval

    @staticmethod
    def _fill_exemplars(target: Any, exemplars: Sequence[_Exemplar]) -> None:
        for trace_id, span_id, value, time_ns in exemplars:
            exemplar = target.add()
            exemplar.trace_id, exemplar.span_id = trace_id, span_id
            exemplar.as_double = value
            exemplar.time_unix_nano = time_ns

    def _remember_starts(self, resource: _Resource, now_ns: int) -> None:
        """Delta: forget the interval's series, remembering when each ended so its next point starts there."""
        starts = self._delta_starts
        for table in (resource.series, resource.events):
            for key in table:
                starts.pop(key, None)
                starts[key] = now_ns
            table.clear()
        while len(starts) > self.config.metric_timestamp_cache_size:
            del starts[next(iter(starts))]

    def _expire(self) -> None:
        expiration = self.config.metrics_expiration
        if expiration <= 0:
            return
        cutoff = time.monotonic() - expiration
        for key in [k for k, r in self._resources.items() if r.last_seen <= cutoff]:
            del self._resources[key]
