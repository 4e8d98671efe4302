"""Rules and SLOs compiled against stores, evaluated on a clock into an alert book (the lifecycle).

Evaluation is pure bookkeeping over recorded samples; it never awaits, so it cannot be slowed by a notifier.
It returns the alerts whose state changed or which are due to be re-sent, and the router decides who hears.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .lifecycle import Alert, State, fingerprint
from .series import Matcher, Store, aggregate, bucket_increase, increase
from .spec import Expr, Rule, Slo

__all__ = ["AlertBook", "CompiledRule", "CompiledSlo", "Silence"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le, "eq": operator.eq,
    "ne": operator.ne}
GroupKey = tuple[tuple[str, str], ...]


def _fmt_window(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class CompiledRule:
    """One alerting rule: its store(s), and its value per group at a given time."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = rule.alert
        self.check = _OPS[rule.op]
        self.for_ = rule.for_
        self.keep_firing_for = rule.keep_firing_for
        self.last_values: dict[GroupKey, float] = {}
        if rule.aggregation == "ratio":
            assert rule.numerator is not None and rule.denominator is not None
            self.stores = [Store(rule.numerator, rule.numerator.window), Store(rule.denominator,
                                                                                 rule.denominator.window)]
            self.group_by: list[str] | None = rule.group_by or []
        else:
            self.stores = [Store(rule, rule.window)]
            self.group_by = rule.group_by

    def values(self, now: float) -> dict[GroupKey, float]:
        if self.rule.aggregation == "ratio":
            numerator = aggregate(self.stores[0], now, self.group_by)
            denominator = aggregate(self.stores[1], now, self.group_by)
            out = {key: numerator.get(key, 0.0) / den for key, den in denominator.items() if den}
        else:
            out = aggregate(self.stores[0], now, self.group_by)
        self.last_values = out
        return out

    def conditions(self, now: float) -> Iterator[tuple[dict[str, str], str, float, float, dict[str, str]]]:
        """(group labels, severity, value, threshold, annotations) for every group whose condition holds."""
        for key, value in self.values(now).items():
            if self.check(value, self.rule.threshold):
                labels = {**dict(key), **self.rule.labels}
                yield labels, self.rule.severity, value, self.rule.threshold, self.rule.annotations


class CompiledSlo:
    """Burn rates over each window pair, one alert per window pair, and the remaining error budget."""

    def __init__(self, slo: Slo) -> None:
        self.slo = slo
        self.name = f"slo:{slo.name}"
        self.for_ = 0.0
        self.keep_firing_for = 0.0
        self.budget = 1.0 - slo.objective
        longest = max(w.long for w in slo.windows)
        finest = min(w.short for w in slo.windows) / 20
        coarse = slo.period / 1000
        total = Expr(metric=slo.total.metric, match=slo.total.match)
        errors = Expr(metric=slo.errors.metric, match=slo.errors.match) if slo.errors else None
        # fine stores answer the burn windows, coarse ones the whole period (one sample per period/1000)
        self.stores = [Store(total, longest, finest), Store(total, slo.period, coarse)]
        if errors is not None:
            self.stores += [Store(errors, longest, finest), Store(errors, slo.period, coarse)]
        self.burn_rates: dict[str, float] = {}
        self.budget_remaining: float | None = None
        self.last_values: dict[GroupKey, float] = {}

    def _increase(self, store: Store, now: float, window: float, latency_bad: bool = False) -> float | None:
        total, seen = 0.0, False
        for series in store.series.values():
            baseline, inside, _ = store.values(series, now, window)
            chain = ([baseline] if baseline is not None else []) + inside
            if latency_bad:
                buckets = bucket_increase(None, [s for s in chain if isinstance(s, tuple)])
                if buckets is None:
                    continue
                good = sum(c for bound, c in zip(series.bounds, buckets, strict=False)
                           if bound <= self.slo.threshold)
                total, seen = total + sum(buckets) - good, True
            else:
                rise = increase(s[0] if isinstance(s, tuple) else s for s in chain)
                if rise is not None:
                    total, seen = total + rise, True
        return total if seen else None

    def error_ratio(self, now: float, window: float, coarse: bool = False) -> float | None:
        offset = 1 if coarse else 0
        total = self._increase(self.stores[offset], now, window)
        if not total:
            return None
        if self.slo.type == "latency":
            bad = self._increase(self.stores[offset], now, window, latency_bad=True)
        else:
            bad = self._increase(self.stores[2 + offset], now, window)
        return (bad or 0.0) / total

    def burn_rate(self, now: float, window: float) -> float | None:
        ratio = self.error_ratio(now, window)
        return None if ratio is None else ratio / self.budget

    def conditions(self, now: float) -> Iterator[tuple[dict[str, str], str, float, float, dict[str, str]]]:
        ratio = self.error_ratio(now, self.slo.period, coarse=True)
        self.budget_remaining = None if ratio is None else 1.0 - ratio / self.budget
        self.burn_rates = {}
        for window in self.slo.windows:
            long_rate = self.burn_rate(now, window.long)
            short_rate = self.burn_rate(now, window.short)
            long_name, short_name = _fmt_window(window.long), _fmt_window(window.short)
            if long_rate is not None:
                self.burn_rates[long_name] = long_rate
            if short_rate is not None:
                self.burn_rates[short_name] = short_rate
            if long_rate is not None and short_rate is not None and long_rate > window.factor \
                    and short_rate > window.factor:
                annotations = {"summary": f"SLO {self.slo.name}: error budget burning at {{{{ $value }}}}x "
                                          f"(over {long_name} and {short_name}, threshold {window.factor:g}x)",
                               **self.slo.annotations}
                yield ({**self.slo.labels, "slo": self.slo.name, "long_window": long_name,
                        "short_window": short_name},
                       window.severity, long_rate, window.factor, annotations)
        self.last_values = {(("window", k),): v for k, v in self.burn_rates.items()}


@dataclass
class Silence:
    id: str
    matchers: dict[str, Any]
    until: float
    created_at: float
    comment: str = ""
    matcher: Matcher = field(init=False)

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.matchers)

    def as_dict(self) -> dict[str, Any]:
        from .lifecycle import rfc3339
        return {"id": self.id, "matchers": self.matchers, "until": rfc3339(self.until), "comment": self.comment}


class AlertBook:
    """Every known alert by fingerprint, moved along its lifecycle at each evaluation."""

    #: Resolved alerts stay listed (and re-postable) this long, as Prometheus keeps them for 15 min.
    resolved_retention = 900.0

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.silences: dict[str, Silence] = {}

    def silenced(self, alert: Alert, now: float) -> bool:
        return any(s.until > now and s.matcher(alert.labels) for s in self.silences.values())

    def evaluate(self, rule: CompiledRule | CompiledSlo, extra_labels: dict[str, str], now: float) -> list[Alert]:
        """Advance the alerts of one rule; return those that changed to firing or resolved."""
        changed: list[Alert] = []
        seen: set[str] = set()
        base = {"alertname": "SLOBurnRate" if isinstance(rule, CompiledSlo) else rule.name}
        owner = id(rule)
        for group, severity, value, threshold, templates in rule.conditions(now):
            labels = {**group, **extra_labels, **base, "severity": severity}
            fp = fingerprint(labels)
            seen.add(fp)
            alert = self.alerts.get(fp)
            if alert is None or alert.state is State.RESOLVED:
                alert = Alert(labels=labels, annotations_template=templates, threshold=threshold,
                              fingerprint=fp, active_at=now, owner=owner)
                self.alerts[fp] = alert
            alert.last_true = now
            alert.update(value)
            if alert.state is State.PENDING and now - alert.active_at >= rule.for_:
                alert.state, alert.fired_at = State.FIRING, now
                changed.append(alert)
        for fp, alert in list(self.alerts.items()):
            if fp in seen or alert.owner != owner or alert.state is State.RESOLVED:
                continue
            if alert.state is State.PENDING:
                del self.alerts[fp]  # never fired: back to inactive, nobody was told
            elif now - alert.last_true >= rule.keep_firing_for:
                alert.state, alert.resolved_at = State.RESOLVED, now
                changed.append(alert)
        return changed

    def resolve(self, fp: str, now: float) -> Alert | None:
        alert = self.alerts.get(fp)
        if alert is None or alert.state is State.RESOLVED:
            return None
        if alert.state is State.PENDING:
            del self.alerts[fp]
            return None
        alert.state, alert.resolved_at, alert.manual = State.RESOLVED, now, True
        return alert

    def forget(self, now: float) -> None:
        for fp, alert in list(self.alerts.items()):
            if alert.state is State.RESOLVED and alert.resolved_at is not None \
                    and now - alert.resolved_at > self.resolved_retention:
                del self.alerts[fp]
        for sid, silence in list(self.silences.items()):
            if silence.until <= now:
                del self.silences[sid]
