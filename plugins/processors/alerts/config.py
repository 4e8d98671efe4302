from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration

from .notifiers import decode_notifier
from .spec import Route, Rule, Slo, decode_keyword_safe

__all__ = ["Config"]


def _default_notifiers() -> dict[str, dict[str, Any]]:
    return {"log": {}}


@dataclass(frozen=True)
class Config:
    #: How often rules are evaluated (and due notifications queued).
    evaluation_interval: Duration = 15.0
    #: Alerting rules (keys: alert, metric, match, aggregation, window, field, quantile, numerator, denominator,
    #: op, threshold, for, keep_firing_for, severity, labels, annotations, group_by). See README.md.
    rules: list[dict[str, Any]] = field(default_factory=list)
    #: SLOs with multi-window, multi-burn-rate alerts and the remaining error budget as a metric.
    slos: list[Slo] = field(default_factory=list)
    #: Routes tried in order (keys: severity, match, notifiers, continue, repeat_interval, send_resolved,
    #: escalation). Empty: every alert goes to every notifier.
    routes: list[dict[str, Any]] = field(default_factory=list)
    #: Notifiers by id (type or type/name): alertmanager, slack, pagerduty, webhook, email, log.
    notifiers: dict[str, dict[str, Any]] = field(default_factory=_default_notifiers)
    #: repeat_interval of the implicit route used when ``routes`` is empty.
    repeat_interval: Duration = 4 * 3600.0
    #: Labels added to every alert (e.g. the gateway's cluster).
    external_labels: dict[str, str] = field(default_factory=dict)

    def parsed_rules(self) -> list[Rule]:
        return [decode_keyword_safe(Rule(), r, "")[0] for r in self.rules]

    def parsed_routes(self) -> list[Route]:
        return [decode_keyword_safe(Route(), r, "")[0] for r in self.routes]

    def parsed_notifiers(self) -> dict[str, Any]:
        return {nid: decode_notifier(nid, data)[0] for nid, data in self.notifiers.items()}

    def validate(self) -> None:
        errors: list[str] = []
        if self.evaluation_interval <= 0:
            errors.append("evaluation_interval: must be > 0")
        for i, raw in enumerate(self.rules):
            errors += decode_keyword_safe(Rule(), raw, f"rules::{i}")[1]
        seen = set()
        for i, slo in enumerate(self.slos):
            if slo.name in seen:
                errors.append(f"slos::{i}::name: duplicate SLO {slo.name!r}")
            seen.add(slo.name)
        for nid, data in self.notifiers.items():
            errors += [f"notifiers::{nid}::{m}" if not m.startswith("unknown notifier") else f"notifiers::{nid}: {m}"
                       for m in decode_notifier(nid, data)[1]]
        for i, raw in enumerate(self.routes):
            route, messages = decode_keyword_safe(Route(), raw, f"routes::{i}")
            errors += messages
            if route is None:
                continue
            escalate = route.escalation.notifiers if route.escalation else []
            for nid in [*route.notifiers, *escalate]:
                if nid not in self.notifiers:
                    errors.append(f"routes::{i}::notifiers: {nid!r} is not among the notifiers "
                                  f"({', '.join(sorted(self.notifiers)) or 'none'})")
        if errors:
            raise ConfigError(errors)
