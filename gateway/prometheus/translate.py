"""OTLP metrics → Prometheus points, per docs/protocols.md §5: names, types, labels, ``job``/``instance``,
``target_info``, exemplars, delta → cumulative and exponential → classic histograms.

One ``Translator`` per exporter. ``translate(request)`` returns the points of one request (``target_info``
included); the pull exporter keeps the latest point of each series, the remote-write exporter sends them.
Work is per data point and per attribute of each point, never per span: metric volumes are small next to traces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from gateway.prometheus.cumulative import CumulativeState
from gateway.prometheus.model import Exemplar, Labels, MetricType, Point
from gateway.prometheus.naming import any_value_str, label_name, metric_name, unit_word

__all__ = ["TranslateOptions", "Translator", "exponential_to_classic", "resource_job_instance"]

_CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
_DELTA = pb.AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#: Resource attributes that identify the target: they make job and instance, not target_info labels.
_IDENTIFYING = frozenset({"service.name", "service.namespace", "service.instance.id"})
#: OpenMetrics caps an exemplar's label set at 128 runes.
_EXEMPLAR_RUNES = 128
#: Label pairs shared between series (see ``Translator._finish``); the table is emptied when it reaches this size.
_SHARED_PAIRS = 100_000


@dataclass(frozen=True)
class TranslateOptions:
    #: Prefix of every metric name (not of target_info).
    namespace: str = ""
    #: false keeps names as they are (only cleaned): no unit, _total or _ratio suffixes.
    add_metric_suffixes: bool = True
    #: Copy every resource attribute onto every series as a label.
    resource_to_telemetry_conversion: bool = False
    #: Emit one target_info series per resource with its non-identifying attributes.
    target_info: bool = True
    #: Add otel_scope_name / otel_scope_version / otel_scope_schema_url / otel_scope_<attr> labels.
    scope_labels: bool = True
    #: Labels added to every series that does not already have them (const_labels / external_labels).
    extra_labels: tuple[tuple[str, str], ...] = ()


@dataclass
class TranslateStats:
    points: int = 0
    #: Points with no Prometheus form: delta non-monotonic sums, empty metrics, unsupported data.
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n


def resource_job_instance(attributes: Iterable[KeyValue]) -> tuple[str, str, dict[str, str]]:
    """(job, instance, other attributes as text) of a resource; job is ``namespace/name`` or ``name``."""
    name = namespace = instance = ""
    others: dict[str, str] = {}
    for kv in attributes:
        key = kv.key
        if key == "service.name":
            name = any_value_str(kv.value)
        elif key == "service.namespace":
            namespace = any_value_str(kv.value)
        elif key == "service.instance.id":
            instance = any_value_str(kv.value)
        else:
            others[key] = any_value_str(kv.value)
    job = f"{namespace}/{name}" if namespace and name else name
    return job, instance, others


def _merge_labels(target: dict[str, str], attributes: Iterable[KeyValue]) -> None:
    """Attributes as labels into ``target``; keys that sanitize alike join their values with ``;`` by key order."""
    clashes: dict[str, list[tuple[str, str]]] | None = None
    seen: dict[str, str] = {}
    for kv in attributes:
        name = label_name(kv.key)
        value = any_value_str(kv.value)
        if name in seen and seen[name] != kv.key:
            if clashes is None:
                clashes = {}
            clashes.setdefault(name, [(seen[name], target.get(name, ""))]).append((kv.key, value))
            continue
        seen[name] = kv.key
        target[name] = value
    if clashes:
        for name, pairs in clashes.items():
            target[name] = ";".join(v for _, v in sorted(pairs) if v)


def exponential_to_classic(point: pb.ExponentialHistogramDataPoint) -> tuple[tuple[float, ...], list[float]]:
    """Bounds and per-bucket counts of an exponential histogram point as a classic histogram.

    Bucket ``i`` of scale ``s`` holds (base**i, base**(i+1)] with base = 2**(2**-s), so its ``le`` is
    base**(i+1); negative buckets mirror that, and the zero bucket's ``le`` is the zero threshold.
    """
    base = 2.0 ** (2.0 ** -point.scale)
    bounds: list[float] = []
    counts: list[float] = []
    negative = point.negative
    for i in range(len(negative.bucket_counts) - 1, -1, -1):  # most negative first
        index = negative.offset + i
        bounds.append(-_power(base, index))
        counts.append(float(negative.bucket_counts[i]))
    bounds.append(point.zero_threshold)
    counts.append(float(point.zero_count))
    positive = point.positive
    for i, n in enumerate(positive.bucket_counts):
        bound = _power(base, positive.offset + i + 1)
        if bound <= bounds[-1]:  # only with a zero threshold past the first buckets: fold them into it
            counts[-1] += n
            continue
        bounds.append(bound)
        counts.append(float(n))
    counts.append(0.0)  # nothing lies above the last bucket's bound
    return tuple(bounds), counts


def _power(base: float, exponent: int) -> float:
    try:
        return base ** exponent
    except OverflowError:
        return math.inf


def _number(point: pb.NumberDataPoint) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


class Translator:
    def __init__(self, options: TranslateOptions | None = None, cumulative: CumulativeState | None = None) -> None:
        self.options = options or TranslateOptions()
        self.cumulative = cumulative or CumulativeState()
        self.stats = TranslateStats()
        #: One object per distinct (name, value) label pair, shared by every series that has it: a million series
        #: of one job and a few span kinds then hold those pairs once, not a million times each. Pairs that are
        #: all different (ids) go through it too and empty it when it is full; the common ones come straight back.
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}

    def translate(self, request: ExportMetricsServiceRequest) -> list[Point]:
        points: list[Point] = []
        for rm in request.resource_metrics:
            self._resource(rm, points)
        self.stats.points += len(points)
        return points

    # ---------------------------------------------------------------- resource and scope

    def _resource(self, rm: pb.ResourceMetrics, out: list[Point]) -> None:
        options = self.options
        job, instance, others = resource_job_instance(rm.resource.attributes)
        resource_labels: dict[str, str] = {}
        if options.resource_to_telemetry_conversion:
            _merge_labels(resource_labels, rm.resource.attributes)
        identity = {}
        if job:
            identity["job"] = job
        if instance:
            identity["instance"] = instance
        latest_ms = 0
        first = len(out)
        for sm in rm.scope_metrics:
            scope_labels = dict(resource_labels)
            if options.scope_labels:
                scope = sm.scope
                if scope.name:
                    scope_labels["otel_scope_name"] = scope.name
                if scope.version:
                    scope_labels["otel_scope_version"] = scope.version
                if sm.schema_url:
                    scope_labels["otel_scope_schema_url"] = sm.schema_url
                for kv in scope.attributes:
                    scope_labels["otel_scope_" + label_name(kv.key)] = any_value_str(kv.value)
            for metric in sm.metrics:
                self._metric(metric, scope_labels, identity, out)
        for point in out[first:]:
            latest_ms = max(latest_ms, point.timestamp_ms)
        if options.target_info and (job or instance) and others and len(out) > first:
            labels: dict[str, str] = {}
            _merge_labels(labels, (kv for kv in rm.resource.attributes if kv.key not in _IDENTIFYING))
            labels.update(identity)
            out.append(Point("target_info", MetricType.INFO, self._finish(labels), latest_ms,
                             help="Target metadata", value=1.0, time_ns=latest_ms * 1_000_000))

    def _finish(self, labels: dict[str, str]) -> Labels:
        for name, value in self.options.extra_labels:
            if name not in labels:
                labels[name] = value
        pairs = self._pairs
        shared = []
        for pair in sorted(labels.items()):
            if pair[0] and pair[1]:
                known = pairs.get(pair)
                if known is None:
                    if len(pairs) >= _SHARED_PAIRS:
                        pairs.clear()
                    known = pairs[pair] = pair
                shared.append(known)
        return tuple(shared)

    def _labels(self, attributes: Iterable[KeyValue], scope_labels: dict[str, str], identity: dict[str, str]
                ) -> Labels:
        labels = dict(scope_labels) if scope_labels else {}
        _merge_labels(labels, attributes)
        for name in ("otel_scope_name", "otel_scope_version", "otel_scope_schema_url"):
            if name in scope_labels:
                labels[name] = scope_labels[name]
        labels.update(identity)
        return self._finish(labels)

    # ---------------------------------------------------------------- metrics

    def _metric(self, metric: pb.Metric, scope_labels: dict[str, str], identity: dict[str, str],
                out: list[Point]) -> None:
        data = metric.WhichOneof("data")
        opts = self.options
        unit = metric.unit
        if data is None:
            self.stats.drop("empty metric")
            return
        if data == "gauge":
            name = metric_name(metric.name, unit, ratio_gauge=True, namespace=opts.namespace,
                               add_suffixes=opts.add_metric_suffixes)
            for p in metric.gauge.data_points:
                out.append(self._number_point(p, name, MetricType.GAUGE, metric, scope_labels, identity))
            return
        if data == "sum":
            self._sum(metric, scope_labels, identity, out)
            return
        if data == "summary":
            name = metric_name(metric.name, unit, namespace=opts.namespace, add_suffixes=opts.add_metric_suffixes)
            for sp in metric.summary.data_points:
                labels = self._labels(sp.attributes, scope_labels, identity)
                out.append(Point(
                    name, MetricType.SUMMARY, labels, sp.time_unix_nano // 1_000_000, metric.description,
                    unit_word(unit), count=float(sp.count), sum=sp.sum,
                    quantiles=tuple((q.quantile, q.value) for q in sp.quantile_values),
                    stale=bool(sp.flags & _NO_RECORDED_VALUE), start_ns=sp.start_time_unix_nano,
                    time_ns=sp.time_unix_nano))
            return
        if data in ("histogram", "exponential_histogram"):
            self._histogram(metric, data, scope_labels, identity, out)
            return
        self.stats.drop(f"unsupported {data}")

    def _number_point(self, p: pb.NumberDataPoint, name: str, mtype: MetricType, metric: pb.Metric,
                      scope_labels: dict[str, str], identity: dict[str, str], value: float | None = None,
                      start_ns: int | None = None) -> Point:
        labels = self._labels(p.attributes, scope_labels, identity)
        exemplars = self._exemplars(p.exemplars) if mtype is MetricType.COUNTER and len(p.exemplars) else ()
        return Point(name, mtype, labels, p.time_unix_nano // 1_000_000, metric.description, unit_word(metric.unit),
                     value=_number(p) if value is None else value, exemplars=exemplars,
                     stale=bool(p.flags & _NO_RECORDED_VALUE),
                     start_ns=p.start_time_unix_nano if start_ns is None else start_ns, time_ns=p.time_unix_nano)

    def _sum(self, metric: pb.Metric, scope_labels: dict[str, str], identity: dict[str, str],
             out: list[Point]) -> None:
        opts = self.options
        total = metric.sum
        temporality = total.aggregation_temporality
        if temporality not in (_CUMULATIVE, _DELTA):
            self.stats.drop("sum without temporality", len(total.data_points))
            return
        if not total.is_monotonic:
            if temporality == _DELTA:
                self.stats.drop("delta non-monotonic sum", len(total.data_points))
                return
            name = metric_name(metric.name, metric.unit, namespace=opts.namespace,
                               add_suffixes=opts.add_metric_suffixes)
            for p in total.data_points:
                out.append(self._number_point(p, name, MetricType.GAUGE, metric, scope_labels, identity))
            return
        name = metric_name(metric.name, metric.unit, counter=True, namespace=opts.namespace,
                           add_suffixes=opts.add_metric_suffixes)
        mtype = MetricType.COUNTER if name.endswith("_total") else MetricType.UNKNOWN
        for p in total.data_points:
            if temporality == _CUMULATIVE or p.flags & _NO_RECORDED_VALUE:
                out.append(self._number_point(p, name, mtype, metric, scope_labels, identity))
                continue
            point = self._number_point(p, name, mtype, metric, scope_labels, identity)
            result = self.cumulative.add_sum(point.key, p.start_time_unix_nano, p.time_unix_nano, point.value)
            if result is None:
                self.stats.drop("delta point out of order")
                continue
            point.start_ns, point.value = result
            out.append(point)

    def _histogram(self, metric: pb.Metric, data: str, scope_labels: dict[str, str], identity: dict[str, str],
                   out: list[Point]) -> None:
        opts = self.options
        name = metric_name(metric.name, metric.unit, namespace=opts.namespace, add_suffixes=opts.add_metric_suffixes)
        container = getattr(metric, data)
        temporality = container.aggregation_temporality
        if temporality not in (_CUMULATIVE, _DELTA):
            self.stats.drop("histogram without temporality", len(container.data_points))
            return
        unit = unit_word(metric.unit)
        for p in container.data_points:
            if data == "histogram":
                bounds = tuple(p.explicit_bounds)
                counts = [float(c) for c in p.bucket_counts]
                if len(counts) != len(bounds) + 1:
                    if counts or p.count:
                        self.stats.drop("histogram with inconsistent buckets")
                        continue
                    counts = [0.0] * (len(bounds) + 1)
            else:
                bounds, counts = exponential_to_classic(p)
            labels = self._labels(p.attributes, scope_labels, identity)
            stale = bool(p.flags & _NO_RECORDED_VALUE)
            total = p.sum if p.HasField("sum") else None
            point = Point(name, MetricType.HISTOGRAM, labels, p.time_unix_nano // 1_000_000, metric.description,
                          unit, bounds=bounds, bucket_counts=tuple(counts), count=float(p.count), sum=total,
                          exemplars=self._exemplars(p.exemplars) if len(p.exemplars) else (), stale=stale,
                          start_ns=p.start_time_unix_nano, time_ns=p.time_unix_nano)
            if temporality == _DELTA and not stale:
                result = self.cumulative.add_histogram(point.key, p.start_time_unix_nano, p.time_unix_nano,
                                                       bounds, counts, float(p.count), total)
                if result is None:
                    self.stats.drop("delta point out of order")
                    continue
                point.start_ns, merged, point.count, point.sum = result
                point.bucket_counts = tuple(merged)
            out.append(point)

    @staticmethod
    def _exemplars(exemplars: Iterable[pb.Exemplar]) -> tuple[Exemplar, ...]:
        result = []
        for e in exemplars:
            labels: dict[str, str] = {}
            runes = 0
            if e.trace_id:
                labels["trace_id"] = e.trace_id.hex()
                runes += len("trace_id") + 32
            if e.span_id:
                labels["span_id"] = e.span_id.hex()
                runes += len("span_id") + 16
            for kv in e.filtered_attributes:
                name, text = label_name(kv.key), any_value_str(kv.value)
                if name in labels or not text:
                    continue
                if runes + len(name) + len(text) > _EXEMPLAR_RUNES:
                    break
                labels[name] = text
                runes += len(name) + len(text)
            value = e.as_double if e.WhichOneof("value") == "as_double" else float(e.as_int)
            result.append(Exemplar(value, e.time_unix_nano // 1_000_000 if e.time_unix_nano else None, labels))
        return tuple(result)
