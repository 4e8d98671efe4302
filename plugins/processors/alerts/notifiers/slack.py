"""Slack incoming webhook (docs/protocols.md §6.2): one message per alert, success is HTTP 200 with body ``ok``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration

from ..lifecycle import Notification
from .base import NotifierBase, RetryConfig, Secret, post_json

__all__ = ["Config", "SlackNotifier"]

COLORS = {"critical": "#d00000", "high": "#ff6600", "warning": "#ffcc00", "info": "#439fe0"}


@dataclass(frozen=True)
class Config:
    #: The secret incoming-webhook URL (write it as ${env:SLACK_WEBHOOK_URL}); never printed.
    webhook_url: str = field(default="", repr=False)
    #: Overrides (legacy webhooks only; app webhooks are tied to one channel).
    channel: str = ""
    username: str = ""
    icon_emoji: str = ""
    timeout: Duration = 10.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("webhook_url: must be set to the webhook's http(s) URL")


class SlackNotifier(NotifierBase):
    def secrets(self) -> list[str]:
        return [self.config.webhook_url]

    def payload(self, n: Notification) -> dict[str, Any]:
        name, severity = n.labels.get("alertname", "alert"), n.labels.get("severity", "")
        status = "RESOLVED" if n.status == "resolved" else "FIRING"
        details = {k: v for k, v in n.annotations.items() if k not in ("summary", "runbook_url")}
        fields = [{"title": k, "value": v, "short": True} for k, v in sorted(n.labels.items())
                  if k not in ("alertname", "severity")]
        fields += [{"title": k, "value": v, "short": False} for k, v in sorted(details.items())]
        attachment: dict[str, Any] = {
            "color": "#2eb886" if n.status == "resolved" else COLORS.get(severity, "#808080"),
            "title": f"[{status}] {name} ({severity})", "text": n.summary, "fields": fields,
            "footer": "otelgw", "mrkdwn_in": ["text"]}
        if "runbook_url" in n.annotations:
            attachment["title_link"] = n.annotations["runbook_url"]
        body: dict[str, Any] = {"text": f"[{status}] {name}: {n.summary}", "attachments": [attachment]}
        for key in ("channel", "username", "icon_emoji"):
            if getattr(self.config, key):
                body[key] = getattr(self.config, key)
        return body

    async def send(self, notifications: list[Notification]) -> None:
        url = Secret(self.config.webhook_url)
        for n in notifications:
            await post_json(self.session, url, self.payload(n), self.config.timeout,
                            ok=lambda status, text: status == 200 and text.strip() == "ok")
