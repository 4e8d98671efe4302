"""Conditions of the kpi connector, checked at config time and compiled once into plain predicates.

A condition is a value (equality, compared as text so that ``200``, ``"200"`` and ``200.0`` agree) or a mapping
of operators that must all hold: ``eq``, ``ne``, ``one_of``, ``none_of``, ``exists``, ``gt``, ``gte``, ``lt``,
``lte`` and ``regex``. Numeric operators read numbers, or strings that parse as numbers; anything else fails them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway import ConfigError
from gateway.prometheus import format_float

__all__ = ["MISSING", "SPAN_KINDS", "STATUS_CODES", "Match", "Predicate", "check_conditions", "check_severity",
           "compile_condition", "number", "parse_severity", "text"]

Predicate = Callable[[Any], bool]
MISSING: Any = object()
OPERATORS = ("eq", "ne", "one_of", "none_of", "exists", "gt", "gte", "lt", "lte", "regex")
_NUMERIC = ("gt", "gte", "lt", "lte")
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
SEVERITIES = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21}


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_severity(value: str) -> int:
    text_value = str(value).strip().upper()
    if text_value.isdigit():
        return int(text_value)
    return SEVERITIES[text_value]


def check_severity(value: str, path: str) -> list[str]:
    try:
        number_ = parse_severity(value)
    except KeyError:
        return [f"{path}: must be a number 1-24 or one of {', '.join(SEVERITIES)}, got {value!r}"]
    return [] if 1 <= number_ <= 24 else [f"{path}: must be between 1 and 24, got {number_}"]


def _check_one(spec: Any, path: str, numeric_only: bool) -> list[str]:
    if not isinstance(spec, Mapping):
        if numeric_only or isinstance(spec, list | dict) or spec is None:
            return [f"{path}: expected a value or a mapping of {', '.join(OPERATORS)}"]
        return []
    errors = []
    if not spec:
        errors.append(f"{path}: an empty condition matches nothing; give at least one operator")
    for op, arg in spec.items():
        where = f"{path}::{op}"
        if op not in OPERATORS or (numeric_only and op not in _NUMERIC):
            valid = _NUMERIC if numeric_only else OPERATORS
            errors.append(f"{where}: unknown operator; valid ones are: {', '.join(valid)}")
        elif op in _NUMERIC and (isinstance(arg, bool) or not isinstance(arg, int | float)):
            errors.append(f"{where}: expected a number, got {arg!r}")
        elif op in ("one_of", "none_of") and not isinstance(arg, list):
            errors.append(f"{where}: expected a list, got {arg!r}")
        elif op == "exists" and not isinstance(arg, bool):
            errors.append(f"{where}: expected true or false, got {arg!r}")
        elif op == "regex":
            try:
                re.compile(str(arg))
            except re.error as exc:
                errors.append(f"{where}: invalid regular expression: {exc}")
    return errors


def check_conditions(conditions: Mapping[str, Any], path: str, numeric_only: bool = False) -> list[str]:
    """Every problem in a ``{key: condition}`` mapping, each prefixed with ``path::key``."""
    errors = []
    for key, spec in conditions.items():
        errors += _check_one(spec, f"{path}::{key}", numeric_only)
    return errors


def _operator(op: str, arg: Any) -> Predicate:
    if op == "eq":
        expected = text(arg)
        return lambda v: v is not MISSING and text(v) == expected
    if op == "ne":
        unexpected = text(arg)
        return lambda v: v is MISSING or text(v) != unexpected
    if op == "one_of":
        options = frozenset(text(a) for a in arg)
        return lambda v: v is not MISSING and text(v) in options
    if op == "none_of":
        excluded = frozenset(text(a) for a in arg)
        return lambda v: v is MISSING or text(v) not in excluded
    if op == "exists":
        wanted = bool(arg)
        return lambda v: (v is not MISSING) == wanted
    if op == "regex":
        pattern = re.compile(str(arg))
        return lambda v: v is not MISSING and pattern.search(text(v)) is not None
    bound = float(arg)
    compare: Callable[[float], bool] = {
        "gt": lambda n: n > bound, "gte": lambda n: n >= bound,
        "lt": lambda n: n < bound, "lte": lambda n: n <= bound,
    }[op]

    def numeric(v: Any) -> bool:
        n = number(v)
        return n is not None and compare(n)
    return numeric


def compile_condition(spec: Any) -> Predicate:
    if not isinstance(spec, Mapping):
        return _operator("eq", spec)
    checks = [_operator(op, arg) for op, arg in spec.items()]
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(check(v) for check in checks)


@dataclass(frozen=True)
class Match:
    #: Span names, exact (spans only).
    span_names: list[str] = field(default_factory=list)
    #: Regular expression the span name must match (searched), for names that carry ids.
    span_name_regex: str = ""
    #: Span kinds: server, client, internal, producer, consumer, unspecified.
    span_kinds: list[str] = field(default_factory=list)
    #: Span status codes: unset, ok, error.
    status_codes: list[str] = field(default_factory=list)
    #: Log event names (the record's event_name, else its event.name attribute).
    event_names: list[str] = field(default_factory=list)
    #: Lowest log severity: a number 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
    min_severity: str = ""
    #: Span or log-record attribute conditions: key → value (equals) or {eq, ne, one_of, none_of, exists, gt,
    #: gte, lt, lte, regex}. A key missing from the record is looked up on its resource.
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Resource attribute conditions, same forms.
    resource: dict[str, Any] = field(default_factory=dict)
    #: Span duration conditions in milliseconds, e.g. {lte: 20000}.
    duration_ms: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        errors = []
        for kind in self.span_kinds:
            if kind not in SPAN_KINDS:
                errors.append(f"span_kinds: {kind!r} is not one of {', '.join(SPAN_KINDS)}")
        for code in self.status_codes:
            if code not in STATUS_CODES:
                errors.append(f"status_codes: {code!r} is not one of {', '.join(STATUS_CODES)}")
        if self.min_severity:
            errors += check_severity(self.min_severity, "min_severity")
        errors += check_conditions(self.attributes, "attributes")
        errors += check_conditions(self.resource, "resource")
        if self.duration_ms:
            errors += [e.replace("duration_ms::duration_ms", "duration_ms")
                       for e in check_conditions({"duration_ms": self.duration_ms}, "duration_ms", True)]
        if self.span_name_regex:
            errors += [e.replace("::regex", "") for e in check_conditions(
                {"span_name_regex": {"regex": self.span_name_regex}}, "")]
        if errors:
            raise ConfigError([e.lstrip(":") for e in errors])

    @property
    def is_empty(self) -> bool:
        return self == Match()
