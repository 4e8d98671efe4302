"""Config of the ``resource`` processor: the Collector's ``attributes`` list (insert, upsert, update, delete)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError

ACTIONS = ("insert", "upsert", "update", "delete")


@dataclass(frozen=True)
class Action:
    #: Resource attribute key.
    key: str = ""
    #: insert (only when absent), upsert (always), update (only when present) or delete.
    action: str = ""
    #: Value to set: string, int, float or bool (``${env:K8S_NODE_NAME}`` works). Not used by delete.
    value: Any = None

    def validate(self) -> None:
        errors = []
        if not self.key:
            errors.append("key: must not be empty")
        if self.action not in ACTIONS:
            errors.append(f"action: must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        elif self.action != "delete" and not isinstance(self.value, str | int | float | bool):
            errors.append(f"value: a string, number or bool is required for {self.action}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: Actions applied in order to the resource of every batch.
    attributes: list[Action] = field(default_factory=list)

    def validate(self) -> None:
        if not self.attributes:
            raise ConfigError("attributes: at least one action is required")
