"""PagerDuty Events API v2 (docs/protocols.md §6.3): trigger and resolve with the alert fingerprint as dedup_key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration

from ..lifecycle import Notification, rfc3339
from .base import NotifierBase, RetryConfig, post_json

__all__ = ["Config", "PagerDutyNotifier"]

SEVERITIES = {"critical": "critical", "high": "error", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class Config:
    #: The 32-character integration key (write it as ${env:PAGERDUTY_ROUTING_KEY}); never printed.
    routing_key: str = field(default="", repr=False)
    url: str = "https://events.pagerduty.com/v2/enqueue"
    #: payload.source: where the problem is (default: the gateway).
    source: str = "otelgw"
    #: payload.component / group / class, when set.
    component: str = ""
    group: str = ""
    timeout: Duration = 10.0
    #: PagerDuty's rate-limit page asks for retries 30 s apart after a 429 that gives no Retry-After.
    retry: RetryConfig = field(default_factory=lambda: RetryConfig(initial_interval=30.0, max_interval=120.0,
                                                                   max_attempts=4))

    def validate(self) -> None:
        if not self.routing_key:
            raise ConfigError("routing_key: must be set")


class PagerDutyNotifier(NotifierBase):
    def secrets(self) -> list[str]:
        return [self.config.routing_key]

    def event(self, n: Notification) -> dict[str, Any]:
        severity = SEVERITIES.get(n.labels.get("severity", ""), "error")
        payload: dict[str, Any] = {
            "summary": f"{n.labels.get('alertname', 'alert')}: {n.summary}"[:1024],
            "source": self.config.source, "severity": severity,
            "timestamp": rfc3339(n.starts_at if n.status == "firing" else (n.ends_at or n.starts_at)),
            "custom_details": {"labels": n.labels, "annotations": n.annotations, "value": n.value},
        }
        if self.config.component:
            payload["component"] = self.config.component
        if self.config.group:
            payload["group"] = self.config.group
        event: dict[str, Any] = {"routing_key": self.config.routing_key,
                                 "event_action": "resolve" if n.status == "resolved" else "trigger",
                                 "dedup_key": n.fingerprint, "payload": payload, "client": "otelgw"}
        if "runbook_url" in n.annotations:
            event["links"] = [{"href": n.annotations["runbook_url"], "text": "runbook"}]
        return event

    async def send(self, notifications: list[Notification]) -> None:
        for n in notifications:
            await post_json(self.session, self.config.url, self.event(n), self.config.timeout,
                            ok=lambda status, text: status == 202 or status == 200)
