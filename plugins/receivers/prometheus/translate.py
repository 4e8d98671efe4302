"""One scrape → OTLP metrics, as the Collector's prometheus receiver translates them.

- counters become cumulative monotonic sums named as exposed (``requests_total``); their start time is the
  ``_created`` sample when the target exposes one, else the first time the series was seen (and again after a
  reset, when the value goes down);
- gauges and untyped series become gauges; histograms keep their buckets (``le`` turned into explicit bounds and
  per-bucket counts), sum and count; summaries keep their quantiles, sum and count;
- ``job`` and ``instance`` become the resource (``service.name``, ``service.instance.id``, ``server.address``,
  ``server.port``, ``url.scheme``); ``target_info`` labels become resource attributes and no metric;
- a series present in the previous scrape and missing from this one gets one point flagged NoRecordedValue (the
  OTLP form of Prometheus' staleness marker), and its start-time state is forgotten.

The text is parsed by prometheus_client's parsers (text format 0.0.4 and OpenMetrics 1.0), lazily, so a scrape
over ``sample_limit`` stops at the first sample too many.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from .relabel import RelabelConfig, relabel

__all__ = ["SCOPE_NAME", "Limits", "ScrapeError", "SeriesState", "Translation", "parser_for", "translate"]

SCOPE_NAME = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
_CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_VALUE = pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_HIST_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_gcount", "_gsum")
_SUMMARY_SUFFIXES = ("_count", "_sum", "_created")

Attrs: TypeAlias = tuple[tuple[str, str], ...]
#: (job, instance): one OTLP resource per target identity.
ResourceKey: TypeAlias = tuple[str, str]
#: (resource, metric name, kind, attributes): one series.
SeriesKey: TypeAlias = tuple[ResourceKey, str, str, Attrs]


class ScrapeError(Exception):
    """A scrape failed; ``cause`` is the counter label and the key for logging once per cause."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class Limits:
    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0


@dataclass
class SeriesState:
    """What one target remembers between scrapes: start times of cumulative series, and last scrape's series."""

    #: series → (start time ns, last value) for counters, histograms and summaries.
    starts: dict[SeriesKey, tuple[int, float]] = field(default_factory=dict)
    #: series of the previous scrape → its metric's (description, unit), for staleness markers.
    previous: dict[SeriesKey, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Translation:
    request: ExportMetricsServiceRequest
    samples_scraped: int = 0
    samples_post_relabel: int = 0
    series_added: int = 0
    points: int = 0


def parser_for(content_type: str) -> Callable[[str], Iterable[Any]]:
    if content_type.lower().startswith("application/openmetrics-text"):
        return parse_openmetrics  # type: ignore[no-any-return]
    return parse_text  # type: ignore[no-any-return]


@dataclass
class _Hist:
    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float | None = None
    time_ns: int = 0


@dataclass
class _Summary:
    quantiles: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float = 0.0
    time_ns: int = 0


@dataclass
class _Metric:
    kind: str  # counter | gauge | histogram | summary
    description: str
    unit: str
    numbers: dict[Attrs, tuple[float, int]] = field(default_factory=dict)
    hists: dict[Attrs, _Hist] = field(default_factory=dict)
    summaries: dict[Attrs, _Summary] = field(default_factory=dict)


class _Builder:
    """Collects one scrape's samples by resource and metric, then writes the OTLP request."""

    def __init__(self, target_labels: Mapping[str, str], honor_labels: bool, honor_timestamps: bool,
                 metric_relabel: list[RelabelConfig], limits: Limits, scrape_ns: int) -> None:
        self.target_labels = dict(target_labels)
        self.honor_labels = honor_labels
        self.honor_timestamps = honor_timestamps
        self.metric_relabel = metric_relabel
        self.limits = limits
        self.scrape_ns = scrape_ns
        self.metrics: dict[ResourceKey, dict[tuple[str, str], _Metric]] = {}
        self.resource_attrs: dict[ResourceKey, dict[str, str]] = {}
        self.created: dict[tuple[ResourceKey, str, Attrs], int] = {}
        self.scraped = 0
        self.kept = 0

    def labels_of(self, name: str, labels: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
        """Metric relabeling, the target's labels merged in (honor_labels), limits; None when dropped."""
        merged = {k: v for k, v in labels.items() if v}
        if self.metric_relabel:
            merged["__name__"] = name
            relabeled = relabel(merged, self.metric_relabel)
            if relabeled is None:
                return None
            name = relabeled.pop("__name__", "")
            if not name:
                return None
            merged = {k: v for k, v in relabeled.items() if v}
        for key, value in self.target_labels.items():
            if key not in merged:
                merged[key] = value
            elif not self.honor_labels:
                exported = "exported_" + key
                while exported in merged:
                    exported = "exported_" + exported
                merged[exported] = merged[key]
                merged[key] = value
        self.kept += 1
        limits = self.limits
        if limits.sample_limit and self.kept > limits.sample_limit:
            raise ScrapeError("sample_limit", f"sample limit exceeded: more than {limits.sample_limit} samples")
        if limits.label_limit and len(merged) > limits.label_limit:
            raise ScrapeError("label_limit", f"label limit exceeded: {name} has {len(merged)} labels, "
                                             f"limit {limits.label_limit}")
        if limits.label_name_length_limit or limits.label_value_length_limit:
            for key, value in merged.items():
                if limits.label_name_length_limit and len(key) > limits.label_name_length_limit:
                    raise ScrapeError("label_name_length_limit", f"label name too long in {name}: {key[:64]}")
                if limits.label_value_length_limit and len(value) > limits.label_value_length_limit:
                    raise ScrapeError("label_value_length_limit", f"label value too long in {name}, label {key}")
        return name, merged

    def time_of(self, sample: Any) -> int:
        ts = sample.timestamp
        if ts is None or not self.honor_timestamps:
            return self.scrape_ns
        if hasattr(ts, "sec"):
            return int(ts.sec) * 1_000_000_000 + int(ts.nsec)
        return round(float(ts) * 1000) * 1_000_000

    def resource_of(self, labels: dict[str, str]) -> ResourceKey:
        key = (labels.pop("job", ""), labels.pop("instance", ""))
        if key not in self.metrics:
            self.metrics[key] = {}
            self.resource_attrs[key] = {}
        return key

    def metric(self, resource: ResourceKey, name: str, kind: str, family: Any) -> _Metric:
        metrics = self.metrics[resource]
        metric = metrics.get((name, kind))
        if metric is None:
            metric = metrics[(name, kind)] = _Metric(kind, family.documentation or "", family.unit or "")
        return metric

    def add_family(self, family: Any, cumulative_bases: set[str]) -> None:
        ftype = family.type
        if ftype == "gauge" and family.name.endswith("_created") and family.name[:-8] in cumulative_bases:
            ftype = "created"  # the text format's separate _created gauge of a counter, histogram or summary
        for sample in family.samples:
            self.scraped += 1
            result = self.labels_of(sample.name, sample.labels)
            if result is None:
                continue
            name, labels = result
            resource = self.resource_of(labels)
            time_ns = self.time_of(sample)
            value = float(sample.value)
            if name == "target_info":
                self.resource_attrs[resource].update(labels)
                continue
            if ftype == "created":
                self.created[(resource, name[:-8], _attrs(labels))] = int(value * 1e9)
            elif ftype == "counter":
                if name.endswith("_created"):
                    self.created[(resource, family.name, _attrs(labels))] = int(value * 1e9)
                else:
                    metric = self.metric(resource, name, "counter", family)
                    metric.numbers[_attrs(labels)] = (value, time_ns)
            elif ftype in ("histogram", "gaugehistogram"):
                self._add_histogram(family, name, labels, resource, value, time_ns)
            elif ftype == "summary":
                self._add_summary(family, name, labels, resource, value, time_ns)
            else:  # gauge, unknown, info, stateset
                metric = self.metric(resource, name, "gauge", family)
                metric.numbers[_attrs(labels)] = (value, time_ns)

    def _add_histogram(self, family: Any, name: str, labels: dict[str, str], resource: ResourceKey,
                       value: float, time_ns: int) -> None:
        suffix = next((s for s in _HIST_SUFFIXES if name.endswith(s)), "")
        base = name[: -len(suffix)] if suffix else name
        le = labels.pop("le", None)
        attrs = _attrs(labels)
        if suffix == "_created":
            self.created[(resource, base, attrs)] = int(value * 1e9)
            return
        point = self.metric(resource, base, "histogram", family).hists.setdefault(attrs, _Hist())
        point.time_ns = time_ns
        if suffix == "_bucket" and le is not None:
            point.buckets[float(le)] = value
        elif suffix in ("_count", "_gcount"):
            point.count = value
        elif suffix in ("_sum", "_gsum"):
            point.sum = value

    def _add_summary(self, family: Any, name: str, labels: dict[str, str], resource: ResourceKey,
                     value: float, time_ns: int) -> None:
        suffix = next((s for s in _SUMMARY_SUFFIXES if name.endswith(s)), "")
        base = name[: -len(suffix)] if suffix else name
        quantile = labels.pop("quantile", None)
        attrs = _attrs(labels)
        if suffix == "_created":
            self.created[(resource, base, attrs)] = int(value * 1e9)
            return
        point = self.metric(resource, base, "summary", family).summaries.setdefault(attrs, _Summary())
        point.time_ns = time_ns
        if suffix == "_count":
            point.count = value
        elif suffix == "_sum":
            point.sum = value
        elif quantile is not None:
            point.quantiles[float(quantile)] = value


def _attrs(labels: Mapping[str, str]) -> Attrs:
    return tuple(sorted(labels.items()))


def _key_values(attrs: Iterable[tuple[str, str]]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs]


def translate(text: str, content_type: str, *, target_labels: Mapping[str, str], scheme: str,
              honor_labels: bool, honor_timestamps: bool, metric_relabel: list[RelabelConfig], limits: Limits,
              state: SeriesState, scrape_ns: int) -> Translation:
    """Parse ``text`` and translate it; raises ``ScrapeError`` (parse error, a limit) without touching ``state``."""
    if limits.sample_limit and not metric_relabel:
        # Every line that is not a comment is a sample: a body far over the limit fails before the parser holds a
        # family of half a million samples in memory.
        lines = text.count("\n") + (not text.endswith("\n")) - text.count("\n#") - text.startswith("#")
        if lines - text.count("\n\n") > limits.sample_limit:
            raise ScrapeError("sample_limit", f"sample limit exceeded: more than {limits.sample_limit} samples")
    builder = _Builder(target_labels, honor_labels, honor_timestamps, metric_relabel, limits, scrape_ns)
    families = []
    try:
        for family in parser_for(content_type)(text):
            families.append(family)
            builder.scraped += len(family.samples)
            if limits.sample_limit and not metric_relabel and builder.scraped > limits.sample_limit:
                # without metric relabeling every sample counts: stop parsing at the first family too many
                raise ScrapeError("sample_limit", f"sample limit exceeded: more than {limits.sample_limit} samples")
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ScrapeError("parse_error", f"cannot parse the exposition: {str(exc)[:200]}") from None
    builder.scraped = 0
    cumulative_bases = {f.name for f in families if f.type in ("counter", "histogram", "summary")}
    for family in families:
        builder.add_family(family, cumulative_bases)
    return _write(builder, scheme, state)


def _resource(key: ResourceKey, scheme: str, extra: Mapping[str, str]) -> list[KeyValue]:
    job, instance = key
    host, _, port = instance.rpartition(":")
    attrs = {"service.name": job, "service.instance.id": instance}
    if port.isdigit():
        attrs["server.address"] = host.strip("[]")
        attrs["server.port"] = port
    attrs["url.scheme"] = scheme
    attrs.update(extra)
    return _key_values(attrs.items())


def _write(builder: _Builder, scheme: str, state: SeriesState) -> Translation:
    request = ExportMetricsServiceRequest()
    translation = Translation(request, builder.scraped, builder.kept)
    current: dict[SeriesKey, tuple[str, str]] = {}
    starts: dict[SeriesKey, tuple[int, float]] = {}
    scopes: dict[ResourceKey, Any] = {}
    for resource, metrics in builder.metrics.items():
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(_resource(resource, scheme, builder.resource_attrs[resource]))
        sm = rm.scope_metrics.add()
        sm.scope.name = SCOPE_NAME
        scopes[resource] = sm
        for (name, kind), metric in metrics.items():
            out = sm.metrics.add(name=name, description=metric.description, unit=metric.unit)
            meta = (metric.description, metric.unit)

            def start_of(attrs: Attrs, value: float, time_ns: int, name: str = name, kind: str = kind,
                         resource: ResourceKey = resource) -> int:
                key = (resource, name, kind, attrs)
                created = builder.created.get((resource, name, attrs))
                if created is None and kind == "counter":
                    created = builder.created.get((resource, name.removesuffix("_total"), attrs))
                known = state.starts.get(key)
                if created is not None:
                    start = created
                elif known is not None and value >= known[1]:
                    start = known[0]
                else:  # first observation, or a reset
                    start = time_ns
                starts[key] = (start, value)
                return start

            if kind == "gauge":
                for attrs, (value, time_ns) in metric.numbers.items():
                    point = out.gauge.data_points.add(as_double=value, time_unix_nano=time_ns)
                    point.attributes.extend(_key_values(attrs))
                    current[(resource, name, kind, attrs)] = meta
            elif kind == "counter":
                out.sum.aggregation_temporality = _CUMULATIVE
                out.sum.is_monotonic = True
                for attrs, (value, time_ns) in metric.numbers.items():
                    point = out.sum.data_points.add(as_double=value, time_unix_nano=time_ns,
                                                    start_time_unix_nano=start_of(attrs, value, time_ns))
                    point.attributes.extend(_key_values(attrs))
                    current[(resource, name, kind, attrs)] = meta
            elif kind == "histogram":
                out.histogram.aggregation_temporality = _CUMULATIVE
                for attrs, hist in metric.hists.items():
                    bounds = sorted(hist.buckets)
                    cumulative = [hist.buckets[b] for b in bounds]
                    total = hist.count if hist.count is not None else (cumulative[-1] if cumulative else 0.0)
                    if bounds and bounds[-1] == float("inf"):
                        bounds.pop()
                        cumulative.pop()
                    counts = [int(c - p) for c, p in zip([*cumulative, total], [0.0, *cumulative], strict=True)]
                    point = out.histogram.data_points.add(
                        time_unix_nano=hist.time_ns, count=int(total), sum=hist.sum, explicit_bounds=bounds,
                        bucket_counts=[max(c, 0) for c in counts],
                        start_time_unix_nano=start_of(attrs, total, hist.time_ns))
                    point.attributes.extend(_key_values(attrs))
                    current[(resource, name, kind, attrs)] = meta
            else:  # summary
                for attrs, summary in metric.summaries.items():
                    point = out.summary.data_points.add(
                        time_unix_nano=summary.time_ns, count=int(summary.count), sum=summary.sum,
                        start_time_unix_nano=start_of(attrs, summary.count, summary.time_ns))
                    for quantile, value in sorted(summary.quantiles.items()):
                        point.quantile_values.add(quantile=quantile, value=value)
                    point.attributes.extend(_key_values(attrs))
                    current[(resource, name, kind, attrs)] = meta
    translation.points = len(current)
    translation.series_added = sum(1 for key in current if key not in state.previous)
    stale = [key for key in state.previous if key not in current]
    if stale:
        mark_stale(request, stale, state.previous, builder.scrape_ns, scheme, scopes)
    state.previous = current
    state.starts = starts
    return translation


def mark_stale(request: ExportMetricsServiceRequest, keys: Iterable[SeriesKey],
               meta: Mapping[SeriesKey, tuple[str, str]], time_ns: int, scheme: str,
               scopes: dict[ResourceKey, Any] | None = None) -> None:
    """Add one NoRecordedValue point per series in ``keys`` to ``request``."""
    scopes = {} if scopes is None else scopes
    metrics: dict[tuple[ResourceKey, str, str], Any] = {}
    for key in keys:
        resource, name, kind, attrs = key
        sm = scopes.get(resource)
        if sm is None:
            rm = request.resource_metrics.add()
            rm.resource.attributes.extend(_resource(resource, scheme, {}))
            sm = scopes[resource] = rm.scope_metrics.add()
            sm.scope.name = SCOPE_NAME
        out = metrics.get((resource, name, kind))
        if out is None:
            description, unit = meta.get(key, ("", ""))
            out = metrics[(resource, name, kind)] = sm.metrics.add(name=name, description=description, unit=unit)
            if kind == "counter":
                out.sum.aggregation_temporality = _CUMULATIVE
                out.sum.is_monotonic = True
            elif kind == "histogram":
                out.histogram.aggregation_temporality = _CUMULATIVE
        container = {"gauge": out.gauge, "counter": out.sum, "histogram": out.histogram,
                     "summary": out.summary}[kind]
        point = container.data_points.add(time_unix_nano=time_ns, flags=_NO_VALUE)
        point.attributes.extend(_key_values(attrs))
