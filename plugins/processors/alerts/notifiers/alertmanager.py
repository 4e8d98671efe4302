"""Alertmanager API v2 (docs/protocols.md §6.1): POST the alerts as a JSON array; re-post while firing with endsAt a few
resend intervals ahead; resolve by re-posting with endsAt set to the resolution time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration

from ..lifecycle import Notification, rfc3339
from .base import NotifierBase, RetryConfig, post_json

__all__ = ["AlertmanagerNotifier", "Config"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Config:
    #: Alertmanager base URL; alerts go to <endpoint>/api/v2/alerts.
    endpoint: str = "http://127.0.0.1:9093"
    #: Re-post firing alerts this often (Prometheus: 1m); endsAt is 4 resend intervals ahead.
    resend_interval: Duration = 60.0
    #: generatorURL on every alert (a link back to the gateway or a dashboard).
    generator_url: str = ""
    timeout: Duration = 10.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError("endpoint: must be an http:// or https:// URL")
        if self.resend_interval <= 0:
            raise ConfigError("resend_interval: must be > 0")


def label_name(name: str) -> str:
    """Alertmanager validates label names as Prometheus does; OpenTelemetry dots become underscores."""
    out = _INVALID.sub("_", name)
    return f"_{out}" if out[:1].isdigit() else out


class AlertmanagerNotifier(NotifierBase):
    always_resolve = True  # without it the alert would linger until its endsAt

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.url = self.config.endpoint.rstrip("/") + "/api/v2/alerts"
        self.resend_interval = self.config.resend_interval
        self.valid_for = 4 * self.config.resend_interval

    def body(self, notifications: list[Notification]) -> list[dict[str, Any]]:
        out = []
        for n in notifications:
            ends = n.ends_at if n.status == "resolved" else n.valid_until
            alert: dict[str, Any] = {
                "labels": {label_name(k): v for k, v in n.labels.items() if v != ""},
                "annotations": {label_name(k): v for k, v in n.annotations.items()},
                "startsAt": rfc3339(n.starts_at),
                "endsAt": rfc3339(max(ends or n.starts_at, n.starts_at)),
            }
            if self.config.generator_url:
                alert["generatorURL"] = self.config.generator_url
            out.append(alert)
        return out

    async def send(self, notifications: list[Notification]) -> None:
        await post_json(self.session, self.url, self.body(notifications), self.config.timeout)
