"""Config of the ``attributes`` processor: ``actions`` and ``include``/``exclude``, as in the Collector."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError

ACTIONS = ("insert", "update", "upsert", "delete", "hash", "extract", "convert")
CONVERTED_TYPES = ("int", "double", "string")


@dataclass(frozen=True)
class Action:
    #: Attribute key the action works on (not needed by delete and hash with ``pattern``).
    key: str = ""
    #: insert, update, upsert, delete, hash, extract or convert.
    action: str = ""
    #: Value to set (string, number or bool), for insert, update and upsert.
    value: Any = None
    #: Take the value from this attribute of the same item instead (insert, update, upsert).
    from_attribute: str = ""
    #: Take the value from the request's client metadata (insert, update, upsert): ``metadata.<header>`` (or the
    #: bare header name) or ``client.address``. The receiver needs ``include_metadata: true``, and no batch
    #: processor without ``metadata_keys`` may come before (a merged batch has no single sender).
    from_context: str = ""
    #: delete and hash: a regular expression selecting keys (instead of ``key``); extract: a regular expression
    #: with named groups, matched against the value of ``key``; each group becomes an attribute.
    pattern: str = ""
    #: convert: int, double or string.
    converted_type: str = ""

    def validate(self) -> None:
        errors = []
        if self.action not in ACTIONS:
            errors.append(f"action: must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        keyless = self.action in ("delete", "hash") and self.pattern
        if not self.key and not keyless:
            errors.append("key: required" + (" (or pattern)" if self.action in ("delete", "hash") else ""))
        if self.action in ("insert", "update", "upsert"):
            given = [name for name in ("value", "from_attribute", "from_context")
                     if getattr(self, name) not in (None, "")]
            if len(given) != 1:
                errors.append(f"{self.action} needs exactly one of value, from_attribute, from_context"
                              + (f", got {', '.join(given)}" if given else ""))
            elif self.value is not None and not isinstance(self.value, str | int | float | bool):
                errors.append("value: must be a string, number or bool")
        if self.pattern:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                errors.append(f"pattern: invalid regular expression {self.pattern!r}: {exc}")
            else:
                if self.action == "extract" and not compiled.groupindex:
                    errors.append("pattern: extract needs named groups, e.g. ^/api/(?P<version>v\\d+)/")
        elif self.action == "extract":
            errors.append("pattern: required for extract")
        if self.action == "convert" and self.converted_type not in CONVERTED_TYPES:
            errors.append(f"converted_type: must be one of {', '.join(CONVERTED_TYPES)}, "
                          f"got {self.converted_type!r}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class KeyValueMatch:
    #: Attribute key.
    key: str = ""
    #: Value it must have (a regular expression with match_type regexp); leave out to require only the key.
    value: Any = None

    def validate(self) -> None:
        if not self.key:
            raise ConfigError("key: required")


@dataclass(frozen=True)
class Library:
    #: Instrumentation scope name.
    name: str = ""
    #: Scope version (optional).
    version: str | None = None


@dataclass(frozen=True)
class SeverityNumber:
    #: Lowest severity number that matches (1-24).
    min: int = 0
    #: Also match records whose severity number is unset (0).
    match_undefined: bool = False


@dataclass(frozen=True)
class Match:
    #: strict (equal) or regexp (Go-style regular expressions, matching anywhere in the value).
    match_type: str = ""
    #: service.name of the resource.
    services: list[str] = field(default_factory=list)
    #: Span names (traces).
    span_names: list[str] = field(default_factory=list)
    #: Span kinds, e.g. SPAN_KIND_SERVER (traces).
    span_kinds: list[str] = field(default_factory=list)
    #: Item attributes that must all match.
    attributes: list[KeyValueMatch] = field(default_factory=list)
    #: Resource attributes that must all match.
    resources: list[KeyValueMatch] = field(default_factory=list)
    #: Instrumentation scopes (name, optional version).
    libraries: list[Library] = field(default_factory=list)
    #: Log bodies (string bodies; logs).
    log_bodies: list[str] = field(default_factory=list)
    #: Log severity texts (logs).
    log_severity_texts: list[str] = field(default_factory=list)
    #: Lowest log severity number (logs).
    log_severity_number: SeverityNumber | None = None
    #: Metric names (metrics).
    metric_names: list[str] = field(default_factory=list)

    def validate(self) -> None:
        errors = []
        if self.match_type not in ("strict", "regexp"):
            errors.append(f"match_type: must be strict or regexp, got {self.match_type!r}")
        if self.match_type == "regexp":
            lists = {"services": self.services, "span_names": self.span_names, "log_bodies": self.log_bodies,
                     "log_severity_texts": self.log_severity_texts, "metric_names": self.metric_names}
            for name, values in lists.items():
                for i, value in enumerate(values):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        errors.append(f"{name}::{i}: invalid regular expression {value!r}: {exc}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: Actions applied in order to every matching span, log record or data point.
    actions: list[Action] = field(default_factory=list)
    #: Only items matching all of these properties are changed.
    include: Match | None = None
    #: Items matching all of these properties are left alone.
    exclude: Match | None = None

    def validate(self) -> None:
        if not self.actions:
            raise ConfigError("actions: at least one action is required")
