"""Generic JSON webhook: one POST per batch, in Alertmanager's webhook shape (version 4) so existing receivers
parse it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError, Duration

from ..lifecycle import Notification, rfc3339
from .base import NotifierBase, RetryConfig, post_json

__all__ = ["Config", "WebhookNotifier"]


@dataclass(frozen=True)
class Config:
    #: Receiver URL; may carry a token, so it is never printed.
    url: str = field(default="", repr=False)
    #: Extra headers (e.g. Authorization); values are never printed.
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: Duration = 10.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("url: must be set to an http(s) URL")


class WebhookNotifier(NotifierBase):
    def secrets(self) -> list[str]:
        return [self.config.url, *self.config.headers.values()]

    def body(self, notifications: list[Notification]) -> dict[str, Any]:
        firing = any(n.status == "firing" for n in notifications)
        return {"version": "4", "receiver": self.id, "status": "firing" if firing else "resolved",
                "alerts": [{"status": n.status, "labels": n.labels, "annotations": n.annotations,
                            "startsAt": rfc3339(n.starts_at),
                            "endsAt": rfc3339(n.ends_at) if n.ends_at else "0001-01-01T00:00:00Z",
                            "fingerprint": n.fingerprint, "value": n.value} for n in notifications]}

    async def send(self, notifications: list[Notification]) -> None:
        await post_json(self.session, self.config.url, self.body(notifications), self.config.timeout,
                        headers=dict(self.config.headers))
