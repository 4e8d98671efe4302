from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ConfigError, Duration

DELTA = "AGGREGATION_TEMPORALITY_DELTA"
CUMULATIVE = "AGGREGATION_TEMPORALITY_CUMULATIVE"
#: The Collector's default buckets, in milliseconds: 2ms 4ms 6ms 8ms 10ms 50ms 100ms 200ms 400ms 800ms 1s 1.4s 2s
#: 5s 10s 15s.
DEFAULT_BUCKETS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000)
#: Dimensions every series has unless excluded; a configured dimension must not repeat them.
BUILTIN_DIMENSIONS = ("service.name", "span.name", "span.kind", "status.code")


@dataclass(frozen=True)
class Dimension:
    #: Span attribute to read (then the resource attribute of that name).
    name: str = ""
    #: Value when neither the span nor its resource has the attribute; unset omits the dimension.
    default: str | None = None


@dataclass(frozen=True)
class ExplicitBuckets:
    #: Upper bounds as durations, ascending (default: the Collector's 16 buckets from 2ms to 15s).
    buckets: list[Duration] | None = None


@dataclass(frozen=True)
class ExponentialBuckets:
    #: Most buckets the positive range may use before the histogram halves its resolution.
    max_size: int = 160


@dataclass(frozen=True)
class HistogramConfig:
    #: true emits no duration histogram (calls only).
    disable: bool = False
    #: Unit of the duration histogram: ms (default) or s.
    unit: str = "ms"
    #: Explicit bucket boundaries (the default kind).
    explicit: ExplicitBuckets | None = None
    #: Base-2 exponential buckets instead of explicit ones.
    exponential: ExponentialBuckets | None = None


@dataclass(frozen=True)
class ExemplarsConfig:
    #: Attach trace and span ids of measured spans to the histogram and calls points.
    enabled: bool = False
    #: Exemplars kept per data point and flush interval.
    max_per_data_point: int = 5


@dataclass(frozen=True)
class EventsConfig:
    #: Emit <namespace>.events, a count of span events.
    enabled: bool = False
    #: Event attributes added as dimensions of the events metric.
    dimensions: list[Dimension] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    #: Extra dimensions on top of service.name, span.name, span.kind and status.code.
    dimensions: list[Dimension] = field(default_factory=list)
    #: Built-in dimensions to leave out, e.g. [status.code].
    exclude_dimensions: list[str] = field(default_factory=list)
    #: Duration histogram settings.
    histogram: HistogramConfig = field(default_factory=HistogramConfig)
    #: Exemplars (trace and span ids) on the emitted points.
    exemplars: ExemplarsConfig = field(default_factory=ExemplarsConfig)
    #: Span-event counting.
    events: EventsConfig = field(default_factory=EventsConfig)
    #: AGGREGATION_TEMPORALITY_CUMULATIVE (default) or AGGREGATION_TEMPORALITY_DELTA.
    aggregation_temporality: str = CUMULATIVE
    #: Prefix of the metric names: <namespace>.calls, <namespace>.duration.
    namespace: str = "traces.span.metrics"
    #: How often the aggregated metrics are sent on (default 60s, the Collector's).
    metrics_flush_interval: Duration = 60.0
    #: Stop emitting (and forget) a resource's series when none of its spans arrived for this long; 0 = never.
    metrics_expiration: Duration = 0.0
    #: Series per resource before new ones are folded into one series with otel.metric.overflow=true; 0 = no limit.
    #: Default 2000, the OpenTelemetry metrics SDK's (the Collector's is 0): an id in a dimension must not be able
    #: to grow the state without bound.
    aggregation_cardinality_limit: int = 2000
    #: Resources held; the least recently seen one is dropped beyond this.
    resource_metrics_cache_size: int = 1000
    #: Resource attributes that identify a resource's series (default: all of them).
    resource_metrics_key_attributes: list[str] = field(default_factory=list)
    #: Instrumentation scope names whose spans get span.instrumentation.scope.name/version dimensions.
    include_instrumentation_scope: list[str] = field(default_factory=list)
    #: Delta mode: series whose last flush time is remembered, so the next point starts where the last ended.
    metric_timestamp_cache_size: int = 1000
    #: Accepted for compatibility (the Collector deprecated it for aggregation_cardinality_limit); unused.
    dimensions_cache_size: int = 1000

    def validate(self) -> None:
        errors = []
        seen = set(BUILTIN_DIMENSIONS)
        for i, dimension in enumerate(self.dimensions):
            if not dimension.name:
                errors.append(f"dimensions::{i}::name: must not be empty")
            elif dimension.name in seen:
                errors.append(f"dimensions::{i}::name: duplicate dimension name {dimension.name!r}")
            seen.add(dimension.name)
        for name in self.exclude_dimensions:
            if name not in BUILTIN_DIMENSIONS:
                errors.append(f"exclude_dimensions: {name!r} is not one of {', '.join(BUILTIN_DIMENSIONS)}")
        if self.histogram.unit not in ("ms", "s"):
            errors.append(f"histogram::unit: must be ms or s, got {self.histogram.unit!r}")
        if self.histogram.explicit is not None and self.histogram.exponential is not None:
            errors.append("histogram: use either explicit or exponential buckets, not both")
        buckets = self.histogram.explicit.buckets if self.histogram.explicit else None
        if buckets is not None and any(b >= a for a, b in zip(buckets[1:], buckets, strict=False)):
            errors.append("histogram::explicit::buckets: must be strictly ascending")
        if self.histogram.exponential is not None and self.histogram.exponential.max_size < 2:
            errors.append("histogram::exponential::max_size: must be >= 2")
        if self.exemplars.max_per_data_point < 1:
            errors.append("exemplars::max_per_data_point: must be >= 1")
        if self.aggregation_temporality not in (CUMULATIVE, DELTA):
            errors.append(f"aggregation_temporality: must be {CUMULATIVE} or {DELTA}, "
                          f"got {self.aggregation_temporality!r}")
        if self.metrics_flush_interval <= 0:
            errors.append("metrics_flush_interval: must be > 0")
        for key in ("aggregation_cardinality_limit",):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0 (0 = no limit)")
        for key in ("resource_metrics_cache_size", "metric_timestamp_cache_size"):
            if getattr(self, key) < 1:
                errors.append(f"{key}: must be >= 1")
        if errors:
            raise ConfigError(errors)

    @property
    def delta(self) -> bool:
        return self.aggregation_temporality == DELTA

    def bucket_bounds(self) -> tuple[float, ...]:
        """Explicit upper bounds in the histogram's unit."""
        per_second = 1000.0 if self.histogram.unit == "ms" else 1.0
        explicit = self.histogram.explicit
        if explicit is not None and explicit.buckets is not None:
            return tuple(round(b * per_second, 9) for b in explicit.buckets)
        return tuple(round(b * per_second / 1000.0, 9) for b in DEFAULT_BUCKETS_MS)
