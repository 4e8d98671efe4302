"""Config of the stanza operators in ``filelog``'s ``operators:`` list, key for key the Collector's.

Each item is a mapping with ``type``; the type selects the dataclass below (a ``Tagged`` union, decoded by the
shared config decoder). YAML keys that are Python keywords
(``if``, ``from``) are held in fields with a trailing underscore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from gateway import ConfigError, Tagged, decode

__all__ = ["OPERATOR_TYPES", "Operator", "OperatorConfig", "decode_operators", "parse_byte_size"]

_ON_ERROR = ("send", "send_quiet", "drop", "drop_quiet")
_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_byte_size(value: Any) -> int:
    """``1MiB``, ``100kb``, ``16384`` → bytes (the Collector's ByteSize); raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 1MiB or 16384, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip().replace("_", "").lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    try:
        return int(float(number) * _UNITS[text[len(number):].strip()])
    except (KeyError, ValueError):
        raise ValueError(f"expected a size such as 1MiB, 100kb or 16384, got {value!r}") from None


def _outputs(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else (str(value),)


@dataclass(frozen=True)
class TimestampConfig:
    #: Field holding the time (required).
    parse_from: str = ""
    #: strptime (default), gotime or epoch.
    layout_type: str = "strptime"
    #: The layout in the syntax of layout_type; for epoch one of s, ms, us, ns, s.ms, s.us, s.ns.
    layout: str = ""
    #: IANA time zone for values without one. Default: the local zone.
    location: str = ""

    def validate(self) -> None:
        errors = []
        if not self.parse_from:
            errors.append("parse_from: required")
        if self.layout_type not in ("strptime", "gotime", "epoch"):
            errors.append(f"layout_type: must be strptime, gotime or epoch, got {self.layout_type!r}")
        elif not self.layout:
            errors.append("layout: required")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class SeverityConfig:
    #: Field holding the severity (required).
    parse_from: str = ""
    #: default, otel (alias aliases) or none: the values recognised before mapping adds its own.
    preset: str = "default"
    #: severity name (error, warn2, ...) → a value, a list, 2xx..5xx or {min, max}.
    mapping: dict[str, Any] = field(default_factory=dict)
    #: Set severity_text to the OpenTelemetry short name (ERROR) instead of the original value.
    overwrite_text: bool = False

    def validate(self) -> None:
        if not self.parse_from:
            raise ConfigError("parse_from: required")


@dataclass(frozen=True)
class OperatorConfig:
    """Keys every operator has."""

    #: The operator type (json_parser, container, ...).
    type: str = ""
    #: Unique id in this list. Default: the type.
    id: str = ""
    #: Id(s) of the operator(s) that get its entries. Default: the next one in the list (the receiver's output
    #: after the last).
    output: Any = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return _outputs(self.output)


@dataclass(frozen=True)
class _Conditional(OperatorConfig):
    #: Only entries for which this expression is true are processed; others pass unchanged.
    if_: str = ""
    #: send (keep the entry as it was, log), send_quiet, drop, drop_quiet.
    on_error: str = "send"

    def validate(self) -> None:
        if self.on_error not in _ON_ERROR:
            raise ConfigError(f"on_error: must be one of {', '.join(_ON_ERROR)}, got {self.on_error!r}")


@dataclass(frozen=True)
class ParserConfig(_Conditional):
    parse_from: str = "body"
    parse_to: str = "attributes"
    timestamp: TimestampConfig | None = None
    severity: SeverityConfig | None = None


@dataclass(frozen=True)
class JsonParserConfig(ParserConfig):
    pass


@dataclass(frozen=True)
class RegexParserConfig(ParserConfig):
    #: Regular expression with named groups ((?P<name>...) or (?<name>...)) (required).
    regex: str = ""

    def validate(self) -> None:
        super().validate()
        if not self.regex:
            raise ConfigError("regex: required")


@dataclass(frozen=True)
class KeyValueParserConfig(ParserConfig):
    delimiter: str = "="
    #: Between pairs; default: any whitespace.
    pair_delimiter: str = ""

    def validate(self) -> None:
        super().validate()
        if not self.delimiter:
            raise ConfigError("delimiter: must not be empty")
        if self.delimiter == self.pair_delimiter:
            raise ConfigError("pair_delimiter: must differ from delimiter")


@dataclass(frozen=True)
class ContainerConfig(_Conditional):
    #: docker, crio or containerd; empty detects the format of each line.
    format: str = ""
    #: k8s.* resource attributes from the /var/log/pods/... path in attributes["log.file.path"].
    add_metadata_from_filepath: bool = True
    #: Largest recombined line from partial (P) entries, in bytes or 1MiB style; 0 is no limit.
    max_log_size: Any = "1MiB"
    parse_from: str = "body"
    severity: SeverityConfig | None = None

    def validate(self) -> None:
        errors = []
        if self.format not in ("", "docker", "crio", "containerd"):
            errors.append(f"format: must be docker, crio or containerd (or empty to detect), got {self.format!r}")
        try:
            parse_byte_size(self.max_log_size)
        except ValueError as exc:
            errors.append(f"max_log_size: {exc}")
        try:
            super().validate()
        except ConfigError as exc:
            errors.extend(exc.messages)
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class TimeParserConfig(_Conditional):
    parse_from: str = ""
    layout_type: str = "strptime"
    layout: str = ""
    location: str = ""

    def validate(self) -> None:
        super().validate()
        TimestampConfig(self.parse_from, self.layout_type, self.layout, self.location).validate()


@dataclass(frozen=True)
class SeverityParserConfig(_Conditional):
    parse_from: str = ""
    preset: str = "default"
    mapping: dict[str, Any] = field(default_factory=dict)
    overwrite_text: bool = False

    def validate(self) -> None:
        super().validate()
        SeverityConfig(self.parse_from, self.preset, self.mapping, self.overwrite_text).validate()


@dataclass(frozen=True)
class MoveConfig(_Conditional):
    from_: str = ""
    to: str = ""

    def validate(self) -> None:
        super().validate()
        errors = [f"{k}: required" for k, v in (("from", self.from_), ("to", self.to)) if not v]
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class CopyConfig(MoveConfig):
    pass


@dataclass(frozen=True)
class AddConfig(_Conditional):
    field: str = ""
    #: A value (string, number, map, list) or EXPR(expression).
    value: Any = None

    def validate(self) -> None:
        super().validate()
        errors = ["field: required"] if not self.field else []
        if self.value is None:
            errors.append("value: required")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class RemoveConfig(_Conditional):
    field: str = ""

    def validate(self) -> None:
        super().validate()
        if not self.field:
            raise ConfigError("field: required")


@dataclass(frozen=True)
class FlattenConfig(RemoveConfig):
    pass


@dataclass(frozen=True)
class FilterConfig(OperatorConfig):
    #: Entries for which this is true are dropped (required).
    expr: str = ""
    #: Share of matching entries dropped, 0..1. Default 1.
    drop_ratio: float = 1.0

    def validate(self) -> None:
        errors = ["expr: required"] if not self.expr else []
        if not 0.0 <= self.drop_ratio <= 1.0:
            errors.append(f"drop_ratio: must be between 0 and 1, got {self.drop_ratio}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class RouteConfig:
    #: Where matching entries go (required).
    output: Any = None
    #: Condition (required).
    expr: str = ""
    #: Attributes added to matching entries.
    attributes: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        errors = ["output: required"] if not _outputs(self.output) else []
        if not self.expr:
            errors.append("expr: required")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class RouterConfig(OperatorConfig):
    #: Checked in order; an entry takes the first route whose expr is true.
    routes: list[RouteConfig] = field(default_factory=list)
    #: Where entries that match no route go; none drops them.
    default: Any = None

    def validate(self) -> None:
        if not self.routes:
            raise ConfigError("routes: at least one route is required")
        if self.output is not None:
            raise ConfigError("output: a router sends through routes and default, not output")


OPERATOR_TYPES: dict[str, type[OperatorConfig]] = {
    "json_parser": JsonParserConfig, "regex_parser": RegexParserConfig, "key_value_parser": KeyValueParserConfig,
    "container": ContainerConfig, "time_parser": TimeParserConfig, "severity_parser": SeverityParserConfig,
    "move": MoveConfig, "copy": CopyConfig, "add": AddConfig, "remove": RemoveConfig, "flatten": FlattenConfig,
    "filter": FilterConfig, "router": RouterConfig,
}


def _yaml_key(message: str) -> str:
    for word in ("if", "from"):
        message = message.replace(f"{word}_:", f"{word}:").replace(f" {word}_,", f" {word},")
        message = message.replace(f", {word}_", f", {word}")
    return message


#: One entry of ``operators``: its ``type`` picks the config dataclass, decoded by the shared config decoder.
Operator = Annotated[OperatorConfig, Tagged("type", lambda: OPERATOR_TYPES)]


@dataclass(frozen=True)
class _Operators:
    operators: tuple[Operator, ...] = ()


def decode_operators(data: Any) -> tuple[OperatorConfig, ...]:
    """An ``operators`` list decoded as the receiver's config decodes it (for building a pipeline in tests)."""
    return decode(_Operators(), {"operators": data}).operators  # type: ignore[no-any-return]


def yaml_messages(messages: list[str]) -> list[str]:
    return [_yaml_key(m) for m in messages]
