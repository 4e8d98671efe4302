"""Writes each notification to the gateway's log: the notifier that needs nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway import ConfigError

from ..lifecycle import Notification
from .base import NotifierBase

__all__ = ["Config", "LogNotifier"]


@dataclass(frozen=True)
class Config:
    #: Log level of the lines: debug, info, warning or error.
    level: str = "warning"

    def validate(self) -> None:
        if self.level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"level: must be debug, info, warning or error, got {self.level!r}")


class LogNotifier(NotifierBase):
    async def send(self, notifications: list[Notification]) -> None:
        level = getattr(logging, self.config.level.upper())
        for n in notifications:
            self.logger.log(level, "alert %s %s: %s (value %s, labels %s)", n.status,
                            n.labels.get("alertname", ""), n.summary, n.value, n.labels)
