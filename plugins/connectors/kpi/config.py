from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ConfigError, Duration

from .match import SPAN_KINDS, STATUS_CODES, Match

__all__ = ["KPI_TYPES", "SIGNALS", "SPAN_KINDS", "STATUS_CODES", "Config", "Kpi", "Label", "Match"]

KPI_TYPES = ("counter", "histogram", "gauge", "updown", "ratio")
SIGNALS = ("spans", "logs")


@dataclass(frozen=True)
class Label:
    #: Attribute key of the metric point (and of the Prometheus label, sanitized).
    name: str = ""
    #: Where the value comes from: a record attribute (then the resource attribute), or span.name, span.kind,
    #: status.code, event.name, severity.text. Default: name.
    attribute: str = ""
    #: Value when the record has none; unset leaves the label off.
    default: str | None = None
    #: A constant value instead of one read from the record (e.g. token.type: input), for KPIs that share a name.
    value: str | None = None
    #: Ratios only: the denominator is not split by this label (rate of X by reason over all records).
    numerator_only: bool = False


@dataclass(frozen=True)
class Kpi:
    #: Metric name, OpenTelemetry style (dots), e.g. callcenter.calls.offered.
    name: str = ""
    #: Help text.
    description: str = ""
    #: UCUM unit: ms, s, 1, {call}, {token}...; Prometheus exporters turn it into a name suffix.
    unit: str = ""
    #: counter, histogram, gauge (last value), updown (up/down counter) or ratio (over window).
    type: str = "counter"
    #: spans or logs: the records this KPI reads.
    signal: str = "spans"
    #: Which records count. Every condition given must hold.
    match: Match = field(default_factory=Match)
    #: What a matching record adds: empty = 1 (a count); duration = span duration in the KPI's unit (ms or s);
    #: otherwise a numeric attribute key (tokens, cost, wait time). Ratios add it to both sides (weighted ratio).
    value: str = ""
    #: Histogram upper bounds, ascending.
    buckets: list[float] = field(default_factory=list)
    #: updown: records that add (value or 1) ...
    increment: Match | None = None
    #: ... and records that subtract. The KPI's match applies to both.
    decrement: Match | None = None
    #: ratio: records (among those matching) that count in the numerator.
    numerator: Match | None = None
    #: ratio: the denominator's records, when not simply every matching record (e.g. from other spans).
    denominator: Match | None = None
    #: ratio: the sliding window (over arrival time).
    window: Duration = 300.0
    #: Attributes that become labels.
    labels: list[Label] = field(default_factory=list)
    #: Label sets before new ones fold into the otel.metric.overflow=true series; default: the connector's.
    cardinality_limit: int | None = None

    def validate(self) -> None:
        errors = []
        if not self.name:
            errors.append("name: must not be empty")
        if self.type not in KPI_TYPES:
            errors.append(f"type: must be one of {', '.join(KPI_TYPES)}, got {self.type!r}")
        if self.signal not in SIGNALS:
            errors.append(f"signal: must be spans or logs, got {self.signal!r}")
        if self.value == "duration" and self.unit not in ("ms", "s"):
            errors.append("unit: must be ms or s when value is duration")
        if self.value == "duration" and self.signal != "spans":
            errors.append("value: duration is only defined for spans")
        if self.type == "histogram" and (not self.buckets or any(
                b >= a for a, b in zip(self.buckets[1:], self.buckets, strict=False))):
            errors.append("buckets: a histogram needs ascending bucket bounds")
        if self.type == "updown" and (self.increment is None or self.decrement is None):
            errors.append("increment: an updown KPI needs both increment and decrement")
        if self.type == "ratio" and self.numerator is None:
            errors.append("numerator: a ratio KPI needs a numerator")
        if self.type == "ratio" and self.window <= 0:
            errors.append("window: must be > 0")
        if self.type == "gauge" and not self.value:
            errors.append("value: a gauge needs the attribute whose last value it shows")
        names = [label.name for label in self.labels]
        for i, label in enumerate(self.labels):
            if not label.name:
                errors.append(f"labels::{i}::name: must not be empty")
            elif names.index(label.name) != i:
                errors.append(f"labels::{i}::name: duplicate label {label.name!r}")
            if label.numerator_only and self.type != "ratio":
                errors.append(f"labels::{i}::numerator_only: only ratios have a numerator")
        if self.cardinality_limit is not None and self.cardinality_limit < 1:
            errors.append("cardinality_limit: must be >= 1")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: The KPIs to derive. KPIs that share a name (same type, unit and buckets) feed one metric, told apart by
    #: their labels.
    kpis: list[Kpi] = field(default_factory=list)
    #: How often the KPI metrics are sent on.
    metrics_flush_interval: Duration = 15.0
    #: Label sets per KPI before new ones fold into one otel.metric.overflow=true series.
    aggregation_cardinality_limit: int = 1000
    #: Forget a label set not updated for this long (0 = never). Ratios forget theirs after their window.
    metrics_expiration: Duration = 0.0
    #: Resource of the emitted metrics (its service.name becomes the Prometheus job). Default:
    #: service.name=otelgw-kpi and service.instance.id=<host name>, so gateway replicas do not collide.
    resource_attributes: dict[str, str] = field(default_factory=dict)
    #: A file_storage extension (listed in service::extensions): the KPI state (up/down counters, ratio windows,
    #: every series) is written there after each flush and at shutdown, and read back at start. Empty = memory.
    storage: str = ""

    def validate(self) -> None:
        errors = []
        first: dict[str, Kpi] = {}
        for i, kpi in enumerate(self.kpis):
            other = first.setdefault(kpi.name, kpi)
            if other is not kpi and (other.type, other.unit, other.buckets) != (kpi.type, kpi.unit, kpi.buckets):
                errors.append(f"kpis::{i}::name: {kpi.name!r} is already a {other.type} with unit {other.unit!r}; "
                              "KPIs may share a name only with the same type, unit and buckets")
        if self.metrics_flush_interval <= 0:
            errors.append("metrics_flush_interval: must be > 0")
        if self.aggregation_cardinality_limit < 1:
            errors.append("aggregation_cardinality_limit: must be >= 1")
        if errors:
            raise ConfigError(errors)
