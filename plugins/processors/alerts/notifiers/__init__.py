"""Notifiers: one module per receiver type, each a ``Config`` and a ``NotifierBase`` subclass."""

from __future__ import annotations

from typing import Any

from gateway import ConfigError, decode, validate_tree

from . import alertmanager, email, log, pagerduty, slack, webhook
from .base import NotifierBase

__all__ = ["TYPES", "NotifierBase", "decode_notifier"]

TYPES: dict[str, tuple[type, type[NotifierBase]]] = {
    "alertmanager": (alertmanager.Config, alertmanager.AlertmanagerNotifier),
    "slack": (slack.Config, slack.SlackNotifier),
    "pagerduty": (pagerduty.Config, pagerduty.PagerDutyNotifier),
    "webhook": (webhook.Config, webhook.WebhookNotifier),
    "email": (email.Config, email.EmailNotifier),
    "log": (log.Config, log.LogNotifier),
}


def decode_notifier(notifier_id: str, data: Any) -> tuple[Any, list[str]]:
    """Decode the config of notifier ``type`` or ``type/name``; messages are relative to the notifier."""
    kind = notifier_id.partition("/")[0]
    if kind not in TYPES:
        return None, [f"unknown notifier type {kind!r}; valid types are: {', '.join(sorted(TYPES))}"]
    try:
        config = decode(TYPES[kind][0](), data or {})
    except ConfigError as exc:
        # decoding messages echo the value; for a mistyped secret field that would print the secret
        return None, [m.split(": expected")[0] + ": wrong type" if ": expected" in m else m for m in exc.messages]
    errors = validate_tree(config)
    return (None if errors else config), errors
