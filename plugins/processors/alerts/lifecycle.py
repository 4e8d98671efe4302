"""One alert's life: inactive → pending → firing → resolved, its fingerprint, and its annotations rendered.

An alert is identified by its label set (alertname, severity, the rule's labels and its group labels); the
fingerprint is a hash of that sorted set, the same identity Alertmanager deduplicates on.
"""

from __future__ import annotations

import enum
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Alert", "Notification", "State", "fingerprint", "render", "rfc3339"]


class State(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rfc3339(ts: float) -> str:
    frac = f"{ts % 1:.3f}"[1:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + frac + "Z"


_TEMPLATE = re.compile(r"\{\{\s*\$(value|threshold|labels\.([A-Za-z0-9_.]+))\s*(?:\|\s*(\w+)\s*)?\}\}")


def _format(value: Any, fmt: str | None) -> str:
    if isinstance(value, float):
        if fmt == "percent":
            return f"{value * 100:.4g}%"
        return f"{value:.4g}"
    return str(value)


def render(template: str, value: float | None, threshold: float, labels: Mapping[str, str]) -> str:
    """``{{ $value }}``, ``{{ $value | percent }}``, ``{{ $threshold }}``, ``{{ $labels.queue }}``."""
    def sub(match: re.Match[str]) -> str:
        what, label, fmt = match.group(1), match.group(2), match.group(3)
        if label is not None:
            return labels.get(label, "")
        item = value if what == "value" else threshold
        return "" if item is None else _format(float(item), fmt)
    return _TEMPLATE.sub(sub, template)


@dataclass
class Alert:
    labels: dict[str, str]
    annotations_template: dict[str, str]
    threshold: float
    fingerprint: str
    state: State = State.PENDING
    value: float | None = None
    #: When the condition first held (pending since).
    active_at: float = 0.0
    fired_at: float | None = None
    resolved_at: float | None = None
    #: Last evaluation at which the condition held (keep_firing_for counts from here).
    last_true: float = 0.0
    #: Resolved by hand through the admin API rather than by the condition clearing.
    manual: bool = False
    #: The rule that raised it (only that rule's evaluation may clear it).
    owner: int = 0
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    def update(self, value: float | None) -> None:
        self.value = value
        self.annotations = {k: render(v, value, self.threshold, self.labels)
                            for k, v in self.annotations_template.items()}

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.fingerprint, "alertname": self.name, "severity": self.severity,
                "state": self.state.value, "value": self.value, "labels": dict(self.labels),
                "annotations": dict(self.annotations), "active_at": rfc3339(self.active_at),
                "fired_at": rfc3339(self.fired_at) if self.fired_at else None,
                "resolved_at": rfc3339(self.resolved_at) if self.resolved_at else None}


@dataclass(frozen=True)
class Notification:
    """What a notifier is handed: a frozen view of the alert at the moment it was routed."""

    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    starts_at: float
    ends_at: float | None
    fingerprint: str
    #: Alertmanager's endsAt for a firing alert: when it should time out if we stop re-posting.
    valid_until: float = 0.0

    @classmethod
    def of(cls, alert: Alert, now: float, valid_for: float = 0.0) -> Notification:
        resolved = alert.state is State.RESOLVED
        return cls(status="resolved" if resolved else "firing", labels=dict(alert.labels),
                   annotations=dict(alert.annotations), value=alert.value,
                   starts_at=alert.fired_at or alert.active_at,
                   ends_at=alert.resolved_at if resolved else None, fingerprint=alert.fingerprint,
                   valid_until=now + valid_for)

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or self.labels.get(
            "alertname", "alert")
