"""Routes: which notifiers hear of an alert, and when again (repeat_interval, escalation, resolve).

As in Alertmanager, routes are tried in order; the first that matches takes the alert unless it says
``continue``. Dedup is per (alert fingerprint, notifier): one notifier named by two matching routes hears once,
and a still-firing alert is re-sent only after the route's repeat_interval (or the notifier's own resend
interval: Alertmanager must be re-posted well before its endsAt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .lifecycle import Alert, Notification, State
from .notifiers.base import NotifierBase
from .series import Matcher
from .spec import Route

__all__ = ["Router"]


@dataclass
class _Sent:
    status: str
    at: float


class _CompiledRoute:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.severities = frozenset(route.severity)
        self.matcher = Matcher(route.match)

    def matches(self, alert: Alert) -> bool:
        return (not self.severities or alert.severity in self.severities) and self.matcher(alert.labels)


class Router:
    def __init__(self, routes: Iterable[Route], notifiers: Mapping[str, NotifierBase],
                 default_repeat_interval: float = 4 * 3600.0) -> None:
        self.notifiers = dict(notifiers)
        compiled = [_CompiledRoute(r) for r in routes]
        # no routes: every alert goes to every notifier
        self.routes = compiled or [_CompiledRoute(Route(notifiers=list(self.notifiers),
                                                        repeat_interval=default_repeat_interval))]
        self.sent: dict[tuple[str, str], _Sent] = {}

    def matching(self, alert: Alert) -> list[_CompiledRoute]:
        out = []
        for route in self.routes:
            if route.matches(alert):
                out.append(route)
                if not route.route.continue_:
                    break
        return out

    def dispatch(self, alerts: Iterable[Alert], now: float, silenced: Callable[[Alert], bool]) -> int:
        """Queue what is due on each notifier; returns how many notifications were queued."""
        batches: dict[str, list[Notification]] = {}
        live: set[str] = set()
        for alert in alerts:
            live.add(alert.fingerprint)
            if alert.state is State.PENDING:
                continue
            for compiled in self.matching(alert):
                route = compiled.route
                escalation = route.escalation
                targets = list(route.notifiers)
                escalate_targets = list(escalation.notifiers) if escalation else []
                if alert.state is State.FIRING:
                    if silenced(alert):
                        continue
                    if escalation and alert.fired_at is not None and now - alert.fired_at >= escalation.after:
                        targets += escalate_targets
                    for nid in targets:
                        notifier = self.notifiers.get(nid)
                        if notifier is None:
                            continue
                        key = (alert.fingerprint, nid)
                        sent = self.sent.get(key)
                        interval = min(route.repeat_interval, notifier.resend_interval or route.repeat_interval)
                        if sent is None or sent.status != "firing" or now - sent.at >= interval:
                            self.sent[key] = _Sent("firing", now)
                            batches.setdefault(nid, []).append(Notification.of(alert, now, notifier.valid_for))
                else:
                    for nid in targets + escalate_targets:
                        notifier = self.notifiers.get(nid)
                        key = (alert.fingerprint, nid)
                        sent = self.sent.get(key)
                        if notifier is None or sent is None or sent.status != "firing":
                            continue
                        self.sent[key] = _Sent("resolved", now)
                        if route.send_resolved or notifier.always_resolve:
                            batches.setdefault(nid, []).append(Notification.of(alert, now, 0.0))
        for key in [k for k in self.sent if k[0] not in live]:
            del self.sent[key]
        for nid, batch in batches.items():
            self.notifiers[nid].submit(batch)
        return sum(len(b) for b in batches.values())
