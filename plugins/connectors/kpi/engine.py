"""The kpi engine: records in, KPI metrics out.

A record is offered only to the KPIs that can match its span or event name (an index built once); for those, the
record's attributes are read once, and only the keys some KPI uses. State is plain dicts keyed by label tuples,
at most ``cardinality_limit`` per KPI, beyond which records count into one ``otel.metric.overflow=true`` series.
Ratios keep per-label counts in ten sub-windows of their window, over arrival time, and are sent with their two
parts (``<name>.numerator`` and ``<name>.denominator``, the window's sums): a ratio cannot be added across
replicas, but its parts can, so Prometheus computes the whole ratio as the sum of the numerators over the sum of
the denominators.
"""

from __future__ import annotations

import bisect
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from gateway import OVERFLOW_ATTRIBUTE, hashable_value, key_value

from .config import SPAN_KINDS, STATUS_CODES, Config
from .match import MISSING
from .rules import CompiledKpi, Record

__all__ = ["KpiEngine"]

_SLOTS = 10
_CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_OVERFLOW: tuple[Any, ...] = ("\x00overflow",)
_CACHE_LIMIT = 10_000
#: Points per request a flush sends: a few milliseconds of work each, so the event loop runs in between.
BATCH_SERIES = 500
#: Series looked at (expiry, a ratio's window) between two chances for the event loop to run.
_SLICE = 5_000


def _gate(kpis: tuple[CompiledKpi, ...]) -> frozenset[str]:
    """One required attribute key per KPI, when every KPI has one; otherwise no gate."""
    gate: set[str] = set()
    for kpi in kpis:
        required = kpi.match.required_keys()
        if not required:
            return frozenset()
        gate.add(min(required))
    return frozenset(gate)


#: The arguments of ``KpiEngine._offer``: KPIs, name, kind, status code, severity, duration (ns), values, resource.
_Offer = tuple[tuple[CompiledKpi, ...], str, int, int, int, int, dict[str, Any], dict[str, Any]]


def _part(request: Any, offered: Iterator[tuple[int, int, Any, _Offer]], outer: str, middle: str,
          inner: str) -> Any:
    """A request of ``request``'s type holding the ``offered`` items under copies of their resource and scope."""
    chosen: dict[int, dict[int, list[Any]]] = {}
    count = 0
    for resource_index, scope_index, item, _ in offered:
        chosen.setdefault(resource_index, {}).setdefault(scope_index, []).append(item)
        count += 1
    if not count:
        return None
    resources = getattr(request, outer)
    if count == sum(len(getattr(scope, inner)) for entry in resources for scope in getattr(entry, middle)):
        return request  # every item: no copy
    part = type(request)()
    for resource_index, scopes in chosen.items():
        source = resources[resource_index]
        entry = getattr(part, outer).add()
        entry.resource.CopyFrom(source.resource)
        entry.schema_url = source.schema_url
        for scope_index, items in scopes.items():
            scope_source = getattr(source, middle)[scope_index]
            scope = getattr(entry, middle).add()
            scope.scope.CopyFrom(scope_source.scope)
            scope.schema_url = scope_source.schema_url
            getattr(scope, inner).extend(items)
    return part


class _State:
    """One KPI's series: label tuple → cell. Ratios also keep their denominators apart."""

    __slots__ = ("denominators", "sent", "sent_denominators", "series", "starts", "touched")

    def __init__(self) -> None:
        self.series: dict[tuple[Any, ...], Any] = {}
        self.denominators: dict[tuple[Any, ...], dict[int, float]] = {}
        self.starts: dict[tuple[Any, ...], int] = {}
        self.touched: dict[tuple[Any, ...], float] = {}
        #: A ratio's label sets sent by the last flush (ratio and numerator; denominator).
        self.sent: set[tuple[Any, ...]] = set()
        self.sent_denominators: set[tuple[Any, ...]] = set()

    def ended(self, keys: list[tuple[Any, ...]],
              denominators: dict[tuple[Any, ...], float]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The label sets the last flush sent and this one does not (``keys``, ``denominators``); remembers
        this flush's."""
        sent, sent_denominators = set(keys), set(denominators)
        ended = [key for key in self.sent if key not in sent]
        ended_denominators = [key for key in self.sent_denominators if key not in sent_denominators]
        self.sent, self.sent_denominators = sent, sent_denominators
        return ended, ended_denominators


class KpiEngine:
    def __init__(self, config: Config, scope_name: str = "kpi") -> None:
        self.config = config
        self.scope_name = scope_name
        self.kpis = [CompiledKpi(i, kpi, config.aggregation_cardinality_limit) for i, kpi in enumerate(config.kpis)]
        self._states = [_State() for _ in self.kpis]
        self._by_signal: dict[str, list[CompiledKpi]] = {
            signal: [k for k in self.kpis if k.kpi.signal == signal] for signal in ("spans", "logs")}
        self._keys = {signal: frozenset().union(*(k.attribute_keys() for k in kpis))
                      for signal, kpis in self._by_signal.items()}
        self._candidates: dict[str, dict[str, tuple[tuple[CompiledKpi, ...], frozenset[str]]]] = {
            "spans": {}, "logs": {}}
        attributes = {"service.name": "otelgw-kpi", "service.instance.id": socket.gethostname()}
        attributes.update(config.resource_attributes)
        self._resource = [key_value(k, v) for k, v in attributes.items()]
        self.overflowed = 0
        self.records = 0

    @property
    def series_count(self) -> int:
        return sum(len(s.series) + len(s.denominators) for s in self._states)

    def _offered(self, signal: str, name: str) -> tuple[tuple[CompiledKpi, ...], frozenset[str]]:
        """The KPIs a record of this name can match, and its gate: attribute keys of which the record must
        carry at least one for any of them to match (empty: no gate)."""
        cache = self._candidates[signal]
        found = cache.get(name)
        if found is None:
            if len(cache) >= _CACHE_LIMIT:  # names carrying ids: do not let the cache grow with them
                cache.clear()
            kpis = tuple(k for k in self._by_signal[signal] if k.names is None or name in k.names)
            found = cache[name] = (kpis, _gate(kpis))
        return found

    # ---------------------------------------------------------------- intake

    def add_traces(self, request: ExportTraceServiceRequest) -> None:
        for _, _, _, offer in self._spans_offered(request):
            self._offer(*offer)

    def add_logs(self, request: ExportLogsServiceRequest) -> None:
        for _, _, _, offer in self._logs_offered(request):
            self._offer(*offer)

    def offered_traces(self, request: ExportTraceServiceRequest) -> ExportTraceServiceRequest | None:
        """The spans of ``request`` some KPI may take, under their resource and scope (``request`` itself when
        that is all of them; None for none). No other span can change a KPI, so a worker that does not own the
        KPIs hands on only these (``Factory.single_owner``)."""
        return _part(request, self._spans_offered(request), "resource_spans", "scope_spans", "spans")

    def offered_logs(self, request: ExportLogsServiceRequest) -> ExportLogsServiceRequest | None:
        """The log records of ``request`` some KPI may take; as ``offered_traces``."""
        return _part(request, self._logs_offered(request), "resource_logs", "scope_logs", "log_records")

    def _spans_offered(self, request: ExportTraceServiceRequest) -> Iterator[tuple[int, int, Any, _Offer]]:
        """(resource index, scope index, span, ``_offer`` arguments) of every span some KPI may take."""
        if not self._by_signal["spans"]:
            return
        needed = self._keys["spans"]
        candidates = self._candidates["spans"]
        for resource_index, rs in enumerate(request.resource_spans):
            resource = {kv.key: hashable_value(kv.value) for kv in rs.resource.attributes}
            # Gated KPIs need one of a few attribute keys. Whether any span of this resource carries one is
            # decided once on the serialized bytes, so spans that cannot match are skipped unread.
            serialized: bytes | None = None
            present: dict[frozenset[str], bool] = {}
            for scope_index, ss in enumerate(rs.scope_spans):
                for span in ss.spans:
                    self.records += 1
                    name = span.name
                    kpis, gate = candidates.get(name) or self._offered("spans", name)
                    if not kpis:
                        continue
                    if gate:
                        found = present.get(gate)
                        if found is None:
                            if serialized is None:
                                serialized = rs.SerializeToString()
                            found = present[gate] = any(key.encode() in serialized for key in gate)
                        if not found:
                            continue
                    values: dict[str, Any] = {}
                    for kv in span.attributes:
                        if kv.key in needed:
                            values[kv.key] = hashable_value(kv.value)
                    if gate and gate.isdisjoint(values) and gate.isdisjoint(resource):
                        continue  # lacks every attribute these KPIs require
                    values["span.name"] = name
                    kind, code = span.kind, span.status.code
                    values["span.kind"] = SPAN_KINDS[kind] if 0 <= kind < 6 else str(kind)
                    values["status.code"] = STATUS_CODES[code] if 0 <= code < 3 else str(code)
                    start, end = span.start_time_unix_nano, span.end_time_unix_nano
                    duration_ns = end - start if end > start else 0
                    yield resource_index, scope_index, span, (kpis, name, kind, code, 0, duration_ns, values, resource)

    def _logs_offered(self, request: ExportLogsServiceRequest) -> Iterator[tuple[int, int, Any, _Offer]]:
        """(resource index, scope index, log record, ``_offer`` arguments) of every record some KPI may take."""
        if not self._by_signal["logs"]:
            return
        needed = self._keys["logs"]
        for resource_index, rl in enumerate(request.resource_logs):
            resource = {kv.key: hashable_value(kv.value) for kv in rl.resource.attributes}
            for scope_index, sl in enumerate(rl.scope_logs):
                for log in sl.log_records:
                    self.records += 1
                    event = log.event_name
                    if event and not self._offered("logs", event)[0]:
                        continue  # decided on the record's own field, before reading any attribute
                    values: dict[str, Any] = {}
                    for kv in log.attributes:
                        if kv.key in needed or kv.key == "event.name":
                            values[kv.key] = hashable_value(kv.value)
                    event = event or str(values.get("event.name", ""))
                    kpis, gate = self._offered("logs", event)
                    if not kpis or (gate and gate.isdisjoint(values) and gate.isdisjoint(resource)):
                        continue
                    values["event.name"] = event
                    values["severity.text"] = log.severity_text
                    values["severity.number"] = log.severity_number
                    yield resource_index, scope_index, log, (kpis, event, 0, 0, log.severity_number, 0, values,
                                                             resource)

    def _offer(self, kpis: Iterable[CompiledKpi], name: str, kind: int, code: int, severity: int, duration_ns: int,
               values: dict[str, Any], resource: dict[str, Any]) -> None:
        def record(key: str) -> Any:
            value = values.get(key, MISSING)
            return resource.get(key, MISSING) if value is MISSING else value

        duration_ms = duration_ns / 1e6
        for kpi in kpis:
            if not kpi.match.test(name, kind, code, severity, duration_ms, record, resource):
                continue
            kind_ = kpi.type
            if kind_ == "ratio":
                self._ratio(kpi, (name, kind, code, severity, duration_ms, record, resource), duration_ns)
                continue
            amount = kpi.value(duration_ns, record)
            if amount is None:
                continue
            if kind_ == "updown":
                up = kpi.increment.test(name, kind, code, severity, duration_ms, record, resource)  # type: ignore[union-attr]
                down = kpi.decrement.test(name, kind, code, severity, duration_ms, record, resource)  # type: ignore[union-attr]
                if up == down:
                    continue
                amount = amount if up else -amount
            elif kind_ == "counter" and amount < 0:
                continue  # a counter only goes up
            state = self._states[kpi.index]
            key = self._key(kpi, state.series, kpi.labels(record))
            cell = state.series.get(key)
            if cell is None:
                cell = state.series[key] = self._cell(kpi)
                state.starts[key] = time.time_ns()
            if kind_ == "histogram":
                cell[0][bisect.bisect_left(kpi.kpi.buckets, amount)] += 1
                cell[1] += amount
                cell[2] += 1
            elif kind_ == "gauge":
                cell[0] = amount
            else:
                cell[0] += amount
            state.touched[key] = time.monotonic()

    def _ratio(self, kpi: CompiledKpi, args: tuple[str, int, int, int, float, Record, dict[str, Any]],
               duration_ns: int) -> None:
        record = args[5]
        in_numerator = kpi.numerator.test(*args)  # type: ignore[union-attr]
        in_denominator = kpi.denominator.test(*args) if kpi.denominator is not None else True
        if not (in_numerator or in_denominator):
            return
        amount = kpi.value(duration_ns, record)
        if amount is None or amount < 0:
            return
        state = self._states[kpi.index]
        labels = kpi.labels(record)
        slot = int(time.monotonic() * _SLOTS / kpi.kpi.window)
        if in_numerator:
            key = self._key(kpi, state.series, labels)
            slots = state.series.setdefault(key, {})
            slots[slot] = slots.get(slot, 0.0) + amount
        if in_denominator:
            shared = tuple(labels[i] for i in kpi.shared_labels) if kpi.split_numerator else labels
            key = self._key(kpi, state.denominators, shared)
            slots = state.denominators.setdefault(key, {})
            slots[slot] = slots.get(slot, 0.0) + amount
            if not kpi.split_numerator:
                state.series.setdefault(key, {})  # so a label set with no numerator yet shows 0

    def _key(self, kpi: CompiledKpi, table: dict[tuple[Any, ...], Any], labels: tuple[Any, ...]) -> tuple[Any, ...]:
        if labels in table or len(table) < kpi.limit:
            return labels
        self.overflowed += 1
        return _OVERFLOW

    @staticmethod
    def _cell(kpi: CompiledKpi) -> list[Any]:
        if kpi.type == "histogram":
            return [[0] * (len(kpi.kpi.buckets) + 1), 0.0, 0]
        return [0.0]

    # ---------------------------------------------------------------- output

    def build(self, now_ns: int | None = None) -> ExportMetricsServiceRequest | None:
        """The metrics to send now, in one request; None when there is nothing. See :meth:`build_batches`."""
        for request in self.build_batches(now_ns, max_series=0):
            if request.resource_metrics:
                return request
        return None

    def build_batches(self, now_ns: int | None = None,
                      max_series: int = BATCH_SERIES) -> Iterator[ExportMetricsServiceRequest]:
        """The metrics to send now, as requests of at most ``max_series`` points each (0: one request).

        Between two requests, and every few thousand series of other work (expiry, a ratio's window), it yields
        an empty request: the caller lets the event loop run there and sends only the others, so a flush of a
        million series never holds the loop for long. Records that arrive meanwhile count in the series they
        reach: every table is walked from a snapshot of its keys, and anything removed is looked up again first.
        """
        now_ns = now_ns or time.time_ns()
        pause = _SLICE if max_series else 0
        yield from self._expire(pause)
        out = _Output(self._resource, self.scope_name)
        for kpi, state in zip(self.kpis, self._states, strict=True):
            # Keys and cells as lists of the objects already held: (key, cell) pairs made for a million label
            # sets would live through the flush and make every full collection meanwhile visit them.
            keys: list[tuple[Any, ...]]
            cells: list[Any]
            parts: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]], list[float | None]]] = []
            if kpi.type == "ratio":
                keys, cells = [], []
                numerators: list[float | None] = []
                denominators: dict[tuple[Any, ...], float] = {}
                yield from self._ratios(kpi, state, keys, cells, pause, numerators, denominators)
                # A label set sent last time and not now has left the window: it is sent once more, as
                # "no recorded value", so the exporter drops it rather than showing its last value until it
                # expires (which Prometheus would add to the other replicas' parts).
                ended, ended_denominators = state.ended(keys, denominators)
                keys += ended
                cells += [None] * len(ended)
                numerators += [None] * len(ended)
                shared = tuple(kpi.label_names[i] for i in kpi.shared_labels)
                parts = [("numerator", kpi.label_names, keys, numerators),
                         ("denominator", shared, [*denominators, *ended_denominators],
                          [*denominators.values(), *[None] * len(ended_denominators)])]
                if not keys and not parts[1][2]:
                    continue
            else:
                keys, cells = list(state.series), list(state.series.values())
                if not state.series:
                    continue
            metric = out.metric(kpi)
            for i, (key, cell) in enumerate(zip(keys, cells, strict=True), 1):
                if kpi.type == "ratio":
                    point = metric.gauge.data_points.add()
                    self._point(point, kpi, key, now_ns, now_ns)
                    if cell is None:
                        point.flags = _NO_RECORDED_VALUE
                    else:
                        point.as_double = cell
                elif kpi.type == "gauge":
                    point = metric.gauge.data_points.add()
                    self._point(point, kpi, key, state.starts.get(key, now_ns), now_ns)
                    point.as_double = cell[0]
                elif kpi.type == "histogram":
                    counts, total, count = cell
                    point = metric.histogram.data_points.add()
                    self._point(point, kpi, key, state.starts.get(key, now_ns), now_ns)
                    point.count, point.sum = count, total
                    point.explicit_bounds.extend(kpi.kpi.buckets)
                    point.bucket_counts.extend(counts)
                else:
                    point = metric.sum.data_points.add()
                    self._point(point, kpi, key, state.starts.get(key, now_ns), now_ns)
                    point.as_double = cell[0]
                out.size += 1
                if max_series and out.size >= max_series:
                    yield out.finish()
                    out = _Output(self._resource, self.scope_name)
                    metric = out.metric(kpi)
                elif pause and i % pause == 0:
                    yield ExportMetricsServiceRequest()
            for part, names, part_keys, values in parts:
                metric = out.part(kpi, part)
                for i, (key, value) in enumerate(zip(part_keys, values, strict=True), 1):
                    point = metric.gauge.data_points.add()
                    self._point(point, kpi, key, now_ns, now_ns, names)
                    if value is None:
                        point.flags = _NO_RECORDED_VALUE
                    else:
                        point.as_double = value
                    out.size += 1
                    if max_series and out.size >= max_series:
                        yield out.finish()
                        out = _Output(self._resource, self.scope_name)
                        metric = out.part(kpi, part)
                    elif pause and i % pause == 0:
                        yield ExportMetricsServiceRequest()
        yield out.finish()

    def _point(self, point: Any, kpi: CompiledKpi, key: tuple[Any, ...], start_ns: int, now_ns: int,
               names: tuple[str, ...] | None = None) -> None:
        point.attributes.extend(self._attributes(names or kpi.label_names, key))
        point.start_time_unix_nano = start_ns
        point.time_unix_nano = now_ns

    @staticmethod
    def _attributes(names: tuple[str, ...], key: tuple[Any, ...]) -> list[KeyValue]:
        if key == _OVERFLOW:
            return [key_value(OVERFLOW_ATTRIBUTE, True)]
        return [key_value(name, value) for name, value in zip(names, key, strict=False) if value is not None]

    def _ratios(self, kpi: CompiledKpi, state: _State, keys: list[tuple[Any, ...]], ratios: list[float],
                pause: int, numerators: list[float | None] | None = None,
                denominators: dict[tuple[Any, ...], float] | None = None) -> Iterator[ExportMetricsServiceRequest]:
        """Drop a ratio's slots that left its window, and put each label set with a value into ``keys``, its
        value into ``ratios`` and its numerator's sum into ``numerators``; ``denominators`` gets the sum of every
        denominator label set with records in the window. Yields an empty request every ``pause`` label sets
        (0: never)."""
        oldest = int(time.monotonic() * _SLOTS / kpi.kpi.window) - _SLOTS + 1
        work = 0
        for table in (state.series, state.denominators):
            for key in list(table):
                slots = table.get(key)
                if slots is None:
                    continue
                for slot in [s for s in slots if s < oldest]:
                    del slots[slot]
                if not slots and (table is state.denominators or kpi.split_numerator or key not in state.denominators):
                    del table[key]
                work += 1
                if pause and work % pause == 0:
                    yield ExportMetricsServiceRequest()
        if denominators is None:
            denominators = {}
        for key, slots in zip(list(state.denominators), list(state.denominators.values()), strict=True):
            denominators[key] = sum(slots.values())
            work += 1
            if pause and work % pause == 0:
                yield ExportMetricsServiceRequest()
        everything = sum(denominators.values()) if kpi.split_numerator and _OVERFLOW in state.series else 0.0
        for key, slots in zip(list(state.series), list(state.series.values()), strict=True):
            if key == _OVERFLOW and kpi.split_numerator:
                denominator = everything
            else:
                shared = tuple(key[i] for i in kpi.shared_labels) if kpi.split_numerator else key
                denominator = denominators.get(shared, 0.0)
            if denominator > 0:
                numerator = sum(slots.values())
                keys.append(key)
                ratios.append(numerator / denominator)
                if numerators is not None:
                    numerators.append(numerator)
            work += 1
            if pause and work % pause == 0:
                yield ExportMetricsServiceRequest()

    def _expire(self, pause: int) -> Iterator[ExportMetricsServiceRequest]:
        """Forget series not touched for ``metrics_expiration``; yields an empty request every ``pause`` series
        looked at (0: never)."""
        expiration = self.config.metrics_expiration
        if expiration <= 0:
            return
        cutoff = time.monotonic() - expiration
        work = 0
        for kpi, state in zip(self.kpis, self._states, strict=True):
            if kpi.type == "ratio":
                continue
            for key, touched in zip(list(state.touched), list(state.touched.values()), strict=True):
                if touched < cutoff and state.touched.get(key, cutoff) < cutoff:  # not touched since the snapshot
                    state.series.pop(key, None)
                    state.starts.pop(key, None)
                    del state.touched[key]
                work += 1
                if pause and work % pause == 0:
                    yield ExportMetricsServiceRequest()


class _Output:
    """One request being filled: one resource and scope, one metric per KPI name."""

    __slots__ = ("metrics", "request", "scope", "size")

    def __init__(self, resource: list[KeyValue], scope_name: str) -> None:
        self.request = ExportMetricsServiceRequest()
        rm = self.request.resource_metrics.add()
        rm.resource.attributes.extend(resource)
        self.scope = rm.scope_metrics.add()
        self.scope.scope.name = scope_name
        self.metrics: dict[str, pb.Metric] = {}
        self.size = 0

    def metric(self, kpi: CompiledKpi) -> pb.Metric:
        """The metric that ``kpi``'s points go into (KPIs of one name share it)."""
        metric = self.metrics.get(kpi.kpi.name)
        if metric is None:
            metric = self.metrics[kpi.kpi.name] = self.scope.metrics.add()
            metric.name, metric.description, metric.unit = kpi.kpi.name, kpi.kpi.description, kpi.kpi.unit
        if kpi.type == "histogram":
            metric.histogram.aggregation_temporality = _CUMULATIVE
        elif kpi.type in ("counter", "updown"):
            metric.sum.aggregation_temporality = _CUMULATIVE
            metric.sum.is_monotonic = kpi.type == "counter"
        return metric

    def part(self, kpi: CompiledKpi, part: str) -> pb.Metric:
        """The gauge of a ratio's numerator or denominator: the sum over the window, in the unit of what its
        records add (a count, or the KPI's ``value``), so no unit and no ``_ratio`` suffix."""
        name = f"{kpi.kpi.name}.{part}"
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metrics[name] = self.scope.metrics.add()
            metric.name = name
            metric.description = f"{part.capitalize()} of {kpi.kpi.name} over its window (sum across replicas)."
        return metric

    def finish(self) -> ExportMetricsServiceRequest:
        """The request, without the metrics that got no point (a ratio whose denominators all left the window);
        an empty request when none is left."""
        metrics = self.scope.metrics
        for i in range(len(metrics) - 1, -1, -1):
            data = metrics[i].WhichOneof("data")
            if data is None or not len(getattr(metrics[i], data).data_points):
                del metrics[i]
        return self.request if len(metrics) else ExportMetricsServiceRequest()
