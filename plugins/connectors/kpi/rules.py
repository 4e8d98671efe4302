"""One KPI compiled: its matchers, label sources and value source, ready for the hot loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Kpi
from .match import MISSING, SPAN_KINDS, STATUS_CODES, Match, Predicate, compile_condition, number, parse_severity

__all__ = ["CompiledKpi", "Matcher", "Record"]

#: A record's field lookup: attribute (then resource attribute, then pseudo field) → value or MISSING.
Record = Callable[[str], Any]


@dataclass(frozen=True)
class Matcher:
    names: frozenset[str]
    name_regex: re.Pattern[str] | None
    kinds: frozenset[int]
    codes: frozenset[int]
    min_severity: int
    attributes: tuple[tuple[str, Predicate], ...]
    resource: tuple[tuple[str, Predicate], ...]
    duration: Predicate | None

    @classmethod
    def compile(cls, match: Match) -> Matcher:
        return cls(
            names=frozenset(match.span_names or match.event_names),
            name_regex=re.compile(match.span_name_regex) if match.span_name_regex else None,
            kinds=frozenset(SPAN_KINDS.index(k) for k in match.span_kinds),
            codes=frozenset(STATUS_CODES.index(c) for c in match.status_codes),
            min_severity=parse_severity(match.min_severity) if match.min_severity else 0,
            attributes=tuple((k, compile_condition(v)) for k, v in match.attributes.items()),
            resource=tuple((k, compile_condition(v)) for k, v in match.resource.items()),
            duration=compile_condition(match.duration_ms) if match.duration_ms else None,
        )

    def keys(self) -> set[str]:
        return {key for key, _ in self.attributes}

    def required_keys(self) -> set[str]:
        """Attribute keys a record must carry to pass (their condition fails on a missing value)."""
        return {key for key, check in self.attributes if not check(MISSING)}

    def resource_ok(self, resource: Mapping[str, Any]) -> bool:
        return all(check(resource.get(key, MISSING)) for key, check in self.resource)

    def test(self, name: str, kind: int, code: int, severity: int, duration_ms: float, record: Record,
             resource: Mapping[str, Any]) -> bool:
        """Whether a record (and its resource) passes every condition given."""
        if self.names and name not in self.names:
            return False
        if self.name_regex is not None and self.name_regex.search(name) is None:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.codes and code not in self.codes:
            return False
        if severity < self.min_severity:
            return False
        if self.duration is not None and not self.duration(duration_ms):
            return False
        for key, check in self.attributes:
            if not check(record(key)):
                return False
        return all(check(resource.get(key, MISSING)) for key, check in self.resource)


class CompiledKpi:
    def __init__(self, index: int, kpi: Kpi, default_limit: int) -> None:
        self.index = index
        self.kpi = kpi
        self.type = kpi.type
        self.match = Matcher.compile(kpi.match)
        self.increment = Matcher.compile(kpi.increment) if kpi.increment else None
        self.decrement = Matcher.compile(kpi.decrement) if kpi.decrement else None
        self.numerator = Matcher.compile(kpi.numerator) if kpi.numerator else None
        self.denominator = Matcher.compile(kpi.denominator) if kpi.denominator else None
        self.limit = kpi.cardinality_limit or default_limit
        self.label_names = tuple(label.name for label in kpi.labels)
        self.label_sources = tuple(label.attribute or label.name for label in kpi.labels)
        self.label_defaults = tuple(label.default for label in kpi.labels)
        self.label_constants = tuple(label.value for label in kpi.labels)
        #: Positions of the labels that split the denominator too (all of them unless numerator_only).
        self.shared_labels = tuple(i for i, label in enumerate(kpi.labels) if not label.numerator_only)
        self.split_numerator = len(self.shared_labels) != len(kpi.labels)
        self.value_key = kpi.value
        self.divider = 1e6 if kpi.unit == "ms" else 1e9
        self.names = self._index_names()

    def _index_names(self) -> frozenset[str] | None:
        """Span or event names this KPI can match at all; None when any name can."""
        if self.match.names and self.match.name_regex is None:
            return self.match.names
        if self.match.name_regex is not None:
            return None
        parts = [m for m in (self.increment, self.decrement) if m] if self.type == "updown" else []
        if self.type == "ratio" and self.denominator is not None:
            parts = [m for m in (self.numerator, self.denominator) if m]
        if parts and all(m.names and m.name_regex is None for m in parts):
            return frozenset().union(*(m.names for m in parts))
        return None

    def matchers(self) -> list[Matcher]:
        return [m for m in (self.match, self.increment, self.decrement, self.numerator, self.denominator) if m]

    def attribute_keys(self) -> set[str]:
        keys = set().union(*(m.keys() for m in self.matchers()))
        keys.update(s for s, c in zip(self.label_sources, self.label_constants, strict=True) if c is None)
        if self.value_key and self.value_key != "duration":
            keys.add(self.value_key)
        return keys

    def labels(self, record: Record) -> tuple[Any, ...]:
        values: list[Any] = []
        for source, default, constant in zip(self.label_sources, self.label_defaults, self.label_constants,
                                             strict=True):
            if constant is not None:
                values.append(constant)
                continue
            value = record(source)
            values.append(default if value is MISSING or value == "" else value)
        return tuple(values)

    def value(self, duration_ns: int, record: Record) -> float | None:
        if not self.value_key:
            return 1.0
        if self.value_key == "duration":
            return duration_ns / self.divider
        return number(record(self.value_key))
