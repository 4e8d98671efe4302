"""The alert packs as Prometheus rules: ``otelgw rules export --format prometheus``.

The alert packs (``alerts`` processors in ``configs/alerts/``) are the one source of the alerts. This module
writes, for every rule and SLO of every ``alerts`` processor in a merged configuration, the Prometheus alerting
rule that fires on the same condition from the metrics the gateway exports: same alert name, severity, ``for``,
``keep_firing_for``, labels and annotations. Metric and label names are translated the way the ``prometheus``
exporter names them, from the metric types and units the configuration's ``kpi`` and ``span_metrics``
connectors declare (``callcenter.agents.available`` → ``callcenter_agents_available``,
``llm.requests`` → ``llm_requests_total``, ``traces.span.metrics.duration`` →
``traces_span_metrics_duration_milliseconds``).

How each aggregation reads, matching ``series.aggregate``: every series is aggregated over the window on its own
(``last_over_time``, ``rate``, ``increase``, ``avg_over_time``...), then the series of a group are summed (min,
max or averaged for those aggregations); ``quantile`` adds the bucket increases of a group and interpolates as
``histogram_quantile`` does; ``ratio`` divides the numerator's groups by the denominator's. A rule without
``group_by`` alerts per series (a ratio rule: over all series).

A ratio KPI read with ``last`` is the one exception: ratios of several replicas cannot be added, so the rule reads
the two parts the kpi connector exports beside each ratio (``<name>.numerator`` and ``<name>.denominator``) and
divides their sums, which is the ratio of all the replicas' records together (per label set of the KPI when the
rule has no ``group_by``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway import ConfigError
from gateway.prometheus import label_name, metric_name

from .config import Config
from .spec import Expr, Rule, Slo, decode_keyword_safe

__all__ = ["MetricInfo", "catalogue", "export_rules"]

_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!="}
_TEMPLATE = re.compile(r"\{\{\s*\$(value|threshold|labels\.([A-Za-z0-9_.]+))\s*(?:\|\s*(\w+)\s*)?\}\}")


@dataclass(frozen=True)
class MetricInfo:
    #: counter, updown, gauge, ratio or histogram (the kpi connector's types).
    type: str
    unit: str
    #: A KPI's label names (attribute keys as the kpi connector writes them), in order.
    labels: tuple[str, ...] = ()
    #: Those of a ratio's labels that split only its numerator (``numerator_only``).
    numerator_only: tuple[str, ...] = ()

    def prometheus_name(self, name: str) -> str:
        if self.type == "counter":
            return metric_name(name, self.unit, counter=True)
        return metric_name(name, self.unit, ratio_gauge=self.type in ("gauge", "ratio"))


def _component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def catalogue(config: Mapping[str, Any]) -> dict[str, MetricInfo]:
    """OTLP metric name → type and unit, for every metric the configuration's connectors derive."""
    out: dict[str, MetricInfo] = {}
    for component_id, body in (config.get("connectors") or {}).items():
        body = body or {}
        kind = _component_type(str(component_id))
        if kind == "kpi":
            for kpi in body.get("kpis") or []:
                labels = [label for label in kpi.get("labels") or [] if isinstance(label, Mapping)]
                out[str(kpi["name"])] = MetricInfo(
                    str(kpi.get("type", "counter")), str(kpi.get("unit", "")),
                    tuple(str(label["name"]) for label in labels),
                    tuple(str(label["name"]) for label in labels if label.get("numerator_only")))
        elif kind in ("span_metrics", "spanmetrics"):
            namespace = str(body.get("namespace", "traces.span.metrics"))
            out[f"{namespace}.calls"] = MetricInfo("counter", "")
            unit = str((body.get("histogram") or {}).get("unit", "ms"))
            out[f"{namespace}.duration"] = MetricInfo("histogram", unit)
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _matchers(match: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for key, cond in match.items():
        label = label_name(str(key))
        if not isinstance(cond, Mapping):
            parts.append(f"{label}={_quote(_text(cond))}")
            continue
        if "eq" in cond:
            parts.append(f"{label}={_quote(_text(cond['eq']))}")
        if "ne" in cond:
            parts.append(f"{label}!={_quote(_text(cond['ne']))}")
        if "regex" in cond:
            parts.append(f"{label}=~{_quote(str(cond['regex']))}")
        if "not_regex" in cond:
            parts.append(f"{label}!~{_quote(str(cond['not_regex']))}")
        if "one_of" in cond:
            parts.append(f"{label}=~{_quote('|'.join(_regex_escape(_text(v)) for v in cond['one_of']))}")
    return "{" + ", ".join(parts) + "}" if parts else ""


_REGEX_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def _regex_escape(text: str) -> str:
    """RE2-safe escape of a literal (``re.escape`` also escapes ``-``, which reads badly in a rule file)."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _by(group_by: Iterable[str] | None, extra: str = "") -> str:
    names = ([extra] if extra else []) + [label_name(g) for g in group_by or ()]
    return f" by ({', '.join(names)})" if names else ""


class _Translator:
    def __init__(self, metrics: Mapping[str, MetricInfo]) -> None:
        self.metrics = metrics

    def series(self, expr: Expr, suffix: str, where: str) -> str:
        info = self.metrics.get(expr.metric)
        if info is None:
            raise ConfigError([f"{where}::metric: {expr.metric!r} is derived by no kpi or span_metrics connector "
                               "of this configuration, so its Prometheus name is not known"])
        return f"{info.prometheus_name(expr.metric)}{suffix}{_matchers(expr.match)}"

    def _field_suffix(self, expr: Expr) -> str:
        info = self.metrics.get(expr.metric)
        if info is not None and info.type == "histogram":
            return "_count" if expr.field == "count" else "_sum"
        return ""

    def expr(self, expr: Expr, group_by: list[str] | None, where: str) -> str:
        window = _duration(expr.window)
        info = self.metrics.get(expr.metric)
        if info is not None and info.type == "ratio" and expr.aggregation == "last":
            return self._ratio_of_sums(expr, info, group_by, window)
        if expr.aggregation == "quantile":
            selector = self.series(expr, "_bucket", where)
            by = _by(group_by, "le") if group_by is not None else ""
            inner = f"sum{by} (rate({selector}[{window}]))" if group_by is not None else f"rate({selector}[{window}])"
            return f"histogram_quantile({expr.quantile:g}, {inner})"
        selector = self.series(expr, self._field_suffix(expr), where)
        per_series = {
            "last": f"last_over_time({selector}[{window}])",
            "rate": f"rate({selector}[{window}])",
            "increase": f"increase({selector}[{window}])",
            "avg": f"avg_over_time({selector}[{window}])",
            "min": f"min_over_time({selector}[{window}])",
            "max": f"max_over_time({selector}[{window}])",
            "sum": f"sum_over_time({selector}[{window}])",
        }[expr.aggregation]
        if group_by is None:
            return per_series
        combine = expr.aggregation if expr.aggregation in ("avg", "min", "max") else "sum"
        return f"{combine}{_by(group_by)} ({per_series})"

    @staticmethod
    def _ratio_of_sums(expr: Expr, info: MetricInfo, group_by: list[str] | None, window: str) -> str:
        """A ratio KPI's last value over every replica: the sum of the numerators over the sum of the
        denominators. The denominator lacks the numerator-only labels, so they are neither grouped nor matched
        on there, and each numerator group is divided by the denominator group it belongs to."""
        groups = list(info.labels) if group_by is None else list(group_by)
        shared = [g for g in groups if g not in info.numerator_only]
        denominator_match = {k: v for k, v in expr.match.items() if k not in info.numerator_only}
        numerator = (f"sum{_by(groups)} (last_over_time({metric_name(expr.metric + '.numerator')}"
                     f"{_matchers(expr.match)}[{window}]))")
        denominator = (f"sum{_by(shared)} (last_over_time({metric_name(expr.metric + '.denominator')}"
                       f"{_matchers(denominator_match)}[{window}]))")
        if shared == groups:
            return f"{numerator}\n  / {denominator}"
        on = ", ".join(label_name(g) for g in shared)
        return f"{numerator}\n  / on ({on}) group_left\n  {denominator}"

    def rule(self, rule: Rule, where: str) -> str:
        if rule.aggregation == "ratio":
            assert rule.numerator is not None and rule.denominator is not None
            group_by = rule.group_by or []
            value = (f"{self.expr(rule.numerator, group_by, where + '::numerator')}\n  / "
                     f"{self.expr(rule.denominator, group_by, where + '::denominator')}")
        else:
            value = self.expr(rule, rule.group_by, where)
        return f"{value}\n  {_OPS[rule.op]} {rule.threshold:g}"

    def slo(self, slo: Slo, window: Any, where: str) -> str:
        budget = 1.0 - slo.objective
        return (f"({self._error_ratio(slo, window.long, where)}) / {budget:g} > {window.factor:g}\n"
                f"and\n({self._error_ratio(slo, window.short, where)}) / {budget:g} > {window.factor:g}")

    def _error_ratio(self, slo: Slo, seconds: float, where: str) -> str:
        window = _duration(seconds)
        if slo.type == "latency":
            bucket = self.series(slo.total, "_bucket", where + "::total")
            good = bucket[:-1] + f', le="{slo.threshold:g}"}}' if bucket.endswith("}") else \
                bucket + f'{{le="{slo.threshold:g}"}}'
            total = self.series(slo.total, "_count", where + "::total")
            return f"1 - sum(increase({good}[{window}])) / sum(increase({total}[{window}]))"
        assert slo.errors is not None
        errors = self.series(slo.errors, "", where + "::errors")
        total = self.series(slo.total, "", where + "::total")
        return f"sum(increase({errors}[{window}])) / sum(increase({total}[{window}]))"


def _annotations(templates: Mapping[str, str], threshold: float) -> dict[str, str]:
    def sub(match: re.Match[str]) -> str:
        what, label, fmt = match.group(1), match.group(2), match.group(3)
        if label is not None:
            return "{{ $labels." + label_name(label) + " }}"
        if what == "threshold":
            return f"{threshold * 100:g}%" if fmt == "percent" else f"{threshold:g}"
        return "{{ $value | humanizePercentage }}" if fmt == "percent" else "{{ $value | printf \"%.4g\" }}"
    return {key: _TEMPLATE.sub(sub, text) for key, text in templates.items()}


def _alerts_processors(config: Mapping[str, Any]) -> list[tuple[str, Config]]:
    from gateway import decode

    out = []
    for component_id, body in (config.get("processors") or {}).items():
        if _component_type(str(component_id)) == "alerts":
            out.append((str(component_id), decode(Config(), body or {})))
    return out


def export_rules(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Prometheus rule groups, one per ``alerts`` processor of ``config`` (a merged raw configuration)."""
    translator = _Translator(catalogue(config))
    groups: list[dict[str, Any]] = []
    errors: list[str] = []
    for component_id, processor in _alerts_processors(config):
        rules: list[dict[str, Any]] = []
        for index, raw in enumerate(processor.rules):
            where = f"processors::{component_id}::rules::{index}"
            rule, messages = decode_keyword_safe(Rule(), raw, where)
            if rule is None:
                errors.extend(messages)
                continue
            try:
                expr = translator.rule(rule, where)
            except ConfigError as exc:
                errors.extend(exc.messages)
                continue
            rules.append(_alerting(rule.alert, expr, rule.for_, rule.keep_firing_for,
                                   {**rule.labels, "severity": rule.severity},
                                   _annotations(rule.annotations, rule.threshold)))
        for index, slo in enumerate(processor.slos):
            where = f"processors::{component_id}::slos::{index}"
            for window in slo.windows:
                try:
                    expr = translator.slo(slo, window, where)
                except ConfigError as exc:
                    errors.extend(exc.messages)
                    break
                long_name, short_name = _duration(window.long), _duration(window.short)
                labels = {**slo.labels, "slo": slo.name, "long_window": long_name, "short_window": short_name,
                          "severity": window.severity}
                summary = (f"SLO {slo.name}: error budget burning at {{{{ $value | printf \"%.4g\" }}}}x (over "
                           f"{long_name} and {short_name}, threshold {window.factor:g}x)")
                rules.append(_alerting("SLOBurnRate", expr, 0.0, 0.0, labels,
                                       {"summary": summary, **_annotations(slo.annotations, window.factor)}))
        name = component_id.replace("/", "-")
        groups.append({"name": f"otelgw-{name}", "interval": _duration(processor.evaluation_interval),
                       "rules": rules})
    if errors:
        raise ConfigError(errors)
    return groups


def _alerting(name: str, expr: str, for_: float, keep_firing_for: float, labels: Mapping[str, str],
              annotations: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        out["for"] = _duration(for_)
    if keep_firing_for:
        out["keep_firing_for"] = _duration(keep_firing_for)
    out["labels"] = {label_name(k): str(v) for k, v in labels.items()}
    if annotations:
        out["annotations"] = dict(annotations)
    return out
