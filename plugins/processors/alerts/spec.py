"""Rule, SLO and route declarations: the dataclasses behind the processor's ``rules``, ``slos`` and ``routes``.

Prometheus and Alertmanager spell two keys as Python keywords (``for``, ``continue``). Dataclass fields cannot
be named so, so those lists are kept as raw mappings in ``Config`` and decoded here with the keyword keys renamed
(``for`` ↔ ``for_``); messages are renamed back so users read the key they wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration, decode, validate_tree

__all__ = ["AGGREGATIONS", "OPS", "SEVERITIES", "BurnWindow", "Escalation", "Expr", "Route", "Rule", "Slo",
           "decode_keyword_safe"]

AGGREGATIONS = ("last", "avg", "min", "max", "sum", "rate", "increase", "quantile", "ratio")
OPS = ("gt", "gte", "lt", "lte", "eq", "ne")
SEVERITIES = ("info", "warning", "high", "critical")
FIELDS = ("value", "count", "sum")
_KEYWORDS = ("for", "continue")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.]*$")


def _check_matchers(matchers: Mapping[str, Any], key: str, errors: list[str]) -> None:
    for label, cond in matchers.items():
        if isinstance(cond, Mapping):
            unknown = set(cond) - {"eq", "ne", "regex", "not_regex", "one_of"}
            if unknown:
                errors.append(f"{key}::{label}: unknown condition {sorted(unknown)}; "
                              "valid: eq, ne, regex, not_regex, one_of")
            for rkey in ("regex", "not_regex"):
                if rkey in cond:
                    try:
                        re.compile(str(cond[rkey]))
                    except re.error as exc:
                        errors.append(f"{key}::{label}::{rkey}: invalid regex: {exc}")


@dataclass(frozen=True)
class Expr:
    #: OTLP metric name the expression reads (e.g. callcenter.queue.depth, traces.span.metrics.calls).
    metric: str = ""
    #: Data point attribute matchers: a value (equality, compared as text) or {eq, ne, regex, not_regex, one_of}.
    match: dict[str, Any] = field(default_factory=dict)
    #: last, avg, min, max, sum, rate, increase, quantile (histograms) over ``window``.
    aggregation: str = "last"
    #: The window aggregated over.
    window: Duration = 300.0
    #: Histograms: which number the aggregation reads (count or sum); value for sums and gauges.
    field: str = "value"
    #: quantile: which one, 0 < q < 1 (0.95 for p95).
    quantile: float = 0.95

    def validate(self) -> None:
        errors: list[str] = []
        if not self.metric:
            errors.append("metric: must not be empty")
        if self.aggregation not in AGGREGATIONS or self.aggregation == "ratio":
            errors.append(f"aggregation: must be one of {', '.join(AGGREGATIONS[:-1])}, got {self.aggregation!r}")
        if self.window <= 0:
            errors.append("window: must be > 0")
        if self.field not in FIELDS:
            errors.append(f"field: must be one of {', '.join(FIELDS)}, got {self.field!r}")
        if not 0 < self.quantile < 1:
            errors.append("quantile: must be between 0 and 1 (exclusive)")
        _check_matchers(self.match, "match", errors)
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Rule(Expr):
    #: Alert name (the alertname label).
    alert: str = ""
    #: ratio: numerator / denominator, each an expression of its own; the rule's metric is not used.
    numerator: Expr | None = None
    denominator: Expr | None = None
    #: gt, gte, lt, lte, eq, ne.
    op: str = "gt"
    #: What the value is compared with.
    threshold: float = 0.0
    #: YAML ``for``: how long the condition must hold before pending becomes firing.
    for_: Duration = 0.0
    #: Keep firing this long after the condition cleared (flapping guard).
    keep_firing_for: Duration = 0.0
    #: info, warning, high or critical.
    severity: str = "warning"
    #: Extra labels on the alert.
    labels: dict[str, str] = field(default_factory=dict)
    #: Templated: {{ $value }}, {{ $value | percent }}, {{ $labels.NAME }}, {{ $threshold }}.
    annotations: dict[str, str] = field(default_factory=dict)
    #: Labels that split the alert: one alert per distinct combination. Unset: every label set alerts on its own
    #: (ratio rules: unset means one alert over all series).
    group_by: list[str] | None = None

    def validate(self) -> None:
        errors: list[str] = []
        if not self.alert:
            errors.append("alert: must not be empty")
        elif not _LABEL_NAME.match(self.alert):
            errors.append(f"alert: {self.alert!r} is not a valid alert name")
        if self.aggregation == "ratio":
            if self.numerator is None or self.denominator is None:
                errors.append("numerator: a ratio rule needs numerator and denominator")
        else:
            try:
                Expr.validate(self)
            except ConfigError as exc:
                errors.extend(exc.messages)
        if self.op not in OPS:
            errors.append(f"op: must be one of {', '.join(OPS)}, got {self.op!r}")
        if self.severity not in SEVERITIES:
            errors.append(f"severity: must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        for name in list(self.labels) + list(self.group_by or []):
            if not _LABEL_NAME.match(name):
                errors.append(f"labels::{name}: not a valid label name")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class BurnWindow:
    #: Long window (e.g. 1h): the burn rate over it must exceed ``factor`` ...
    long: Duration = 3600.0
    #: ... and over the short window too (e.g. 5m), so the alert resolves soon after the burn stops.
    short: Duration = 300.0
    #: Burn rate: error ratio / error budget ratio (14.4 spends 2 % of a 30-day budget in one hour).
    factor: float = 14.4
    #: Severity of the alert this window raises.
    severity: str = "critical"

    def validate(self) -> None:
        errors = []
        if not 0 < self.short < self.long:
            errors.append("short: must be > 0 and shorter than long")
        if self.factor <= 0:
            errors.append("factor: must be > 0")
        if self.severity not in SEVERITIES:
            errors.append(f"severity: must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if errors:
            raise ConfigError(errors)


def _default_windows() -> list[BurnWindow]:
    return [BurnWindow(3600.0, 300.0, 14.4, "critical"), BurnWindow(21600.0, 1800.0, 6.0, "high")]


@dataclass(frozen=True)
class Slo:
    #: SLO name (the slo label).
    name: str = ""
    #: Target fraction of good events, e.g. 0.999.
    objective: float = 0.999
    #: The period the error budget is counted over.
    period: Duration = 30 * 86400.0
    #: availability: errors / total from two counters; latency: events slower than threshold / all, from a
    #: histogram (``total`` is the histogram, ``threshold`` a bucket bound).
    type: str = "availability"
    #: All events: a counter (availability) or a histogram (latency). Only metric and match are read.
    total: Expr = field(default_factory=Expr)
    #: availability: the bad events (a counter, usually the same metric with a status matcher).
    errors: Expr | None = None
    #: latency: a bucket upper bound, in the histogram's unit; events above it are bad.
    threshold: float = 0.0
    #: Multi-window, multi-burn-rate alerts. Default: 1h & 5m at 14.4x (critical), 6h & 30m at 6x (high).
    windows: list[BurnWindow] = field(default_factory=_default_windows)
    #: Extra labels and annotations on its alerts.
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        errors = []
        if not self.name:
            errors.append("name: must not be empty")
        if not 0 < self.objective < 1:
            errors.append("objective: must be between 0 and 1 (exclusive), e.g. 0.999")
        if self.period <= 0:
            errors.append("period: must be > 0")
        if self.type not in ("availability", "latency"):
            errors.append(f"type: must be availability or latency, got {self.type!r}")
        if self.type == "availability" and self.errors is None:
            errors.append("errors: an availability SLO needs the errors counter")
        if self.type == "latency" and self.threshold <= 0:
            errors.append("threshold: a latency SLO needs a bucket bound > 0")
        if not self.windows:
            errors.append("windows: at least one burn-rate window is needed")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Escalation:
    #: Notify ``notifiers`` once a firing alert has stayed unresolved this long.
    after: Duration = 900.0
    notifiers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Route:
    #: Severities this route takes (empty: any).
    severity: list[str] = field(default_factory=list)
    #: Label matchers, as in rules (a value or {eq, ne, regex, not_regex, one_of}); alertname is a label too.
    match: dict[str, Any] = field(default_factory=dict)
    #: Notifier ids (type or type/name, keys of ``notifiers``).
    notifiers: list[str] = field(default_factory=list)
    #: YAML ``continue``: after matching, go on trying the next routes (Alertmanager's continue).
    continue_: bool = False
    #: Resend a still-firing alert on this route this often (cooldown between repeats).
    repeat_interval: Duration = 4 * 3600.0
    #: Send a notification when the alert resolves.
    send_resolved: bool = True
    #: Escalate to further notifiers when the alert stays firing.
    escalation: Escalation | None = None

    def validate(self) -> None:
        errors: list[str] = []
        for sev in self.severity:
            if sev not in SEVERITIES:
                errors.append(f"severity: must be one of {', '.join(SEVERITIES)}, got {sev!r}")
        if not self.notifiers:
            errors.append("notifiers: a route needs at least one notifier")
        if self.repeat_interval <= 0:
            errors.append("repeat_interval: must be > 0")
        _check_matchers(self.match, "match", errors)
        if errors:
            raise ConfigError(errors)


def _rename(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {(f"{k}_" if k in _KEYWORDS else k): _rename(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_rename(v) for v in data]
    return data


def _unrename(message: str) -> str:
    for word in _KEYWORDS:
        message = re.sub(rf"\b{word}_\b", word, message)
    return message


def decode_keyword_safe(default: Any, data: Any, path: str) -> tuple[Any, list[str]]:
    """Decode and validate one rule or route; returns it (None on error) and the messages under ``path``."""
    if not isinstance(data, Mapping):
        return None, [f"{path}: expected a mapping, got {type(data).__name__}"]
    try:
        value = decode(default, _rename(data))
    except ConfigError as exc:
        return None, [_unrename(m) for m in exc.prefixed(path).messages]
    errors = [_unrename(f"{path}::{m}") for m in validate_tree(value)]
    return (None if errors else value), errors
