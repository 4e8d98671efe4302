"""Config of the ``resource`` processor: the Collector's ``attributes`` list of actions, applied to resources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError

ACTIONS = ("insert", "upsert", "update", "delete", "hash", "convert")
CONVERSIONS = ("int", "double", "string")


@dataclass(frozen=True)
class Action:
    #: Resource attribute key (delete and hash may use pattern instead).
    key: str = ""
    #: insert (only when absent), upsert (always), update (only when present), delete, hash (SHA-256 hex of the
    #: value) or convert (to converted_type).
    action: str = ""
    #: Value to set: string, int, float or bool (``${env:K8S_NODE_NAME}`` works).
    value: Any = None
    #: insert/update/upsert: copy the value of this other resource attribute (nothing happens when it is absent).
    from_attribute: str = ""
    #: insert/update/upsert: take the value from the request's client metadata: ``metadata.<header>`` (or the
    #: bare header name) or ``client.address``; needs the receiver's ``include_metadata: true``.
    from_context: str = ""
    #: delete and hash: a regular expression; every key it matches is deleted or hashed.
    pattern: str = ""
    #: convert: int, double or string. A value that does not convert is left as it was.
    converted_type: str = ""

    def validate(self) -> None:
        errors = []
        if self.action not in ACTIONS:
            errors.append(f"action: must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not self.key and not (self.pattern and self.action in ("delete", "hash")):
            errors.append("key: must not be empty" + (" (or set pattern)" if self.action in ("delete", "hash")
                                                      else ""))
        if self.action in ("insert", "upsert", "update"):
            given = [name for name in ("value", "from_attribute", "from_context") if getattr(self, name) not in
                     (None, "")]
            if len(given) != 1:
                errors.append(f"{self.action} needs exactly one of value, from_attribute, from_context"
                              + (f", got {', '.join(given)}" if given else ""))
            elif self.value is not None and not isinstance(self.value, str | int | float | bool):
                errors.append(f"value: a string, number or bool is required for {self.action}")
        if self.action == "convert" and self.converted_type not in CONVERSIONS:
            errors.append(f"converted_type: must be one of {', '.join(CONVERSIONS)}, got {self.converted_type!r}")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                errors.append(f"pattern: invalid regular expression {self.pattern!r}: {exc}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: Actions applied in order to the resource of every batch.
    attributes: list[Action] = field(default_factory=list)

    def validate(self) -> None:
        if not self.attributes:
            raise ConfigError("attributes: at least one action is required")
