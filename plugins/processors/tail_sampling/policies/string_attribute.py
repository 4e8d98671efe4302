"""``string_attribute``: samples a trace with a resource or span attribute ``key`` whose value is listed.

Exact values, or regular expressions with ``enabled_regex_matching`` (searched, as Go's MatchString does; results
cached per value, ``cache_max_size`` entries). ``invert_match`` samples the traces where no value matches,
including those without the key; it gives a plain sampled / not sampled decision (the Collector's deprecated
"inverted" decisions are not reproduced: use a ``drop`` policy to veto).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from ..trace import may_contain
from .attributes import any_attribute, key_needle, prefiltered, string_needle
from .base import Decision, PolicyKind

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Attribute key (required).
    key: str = ""
    #: Values to match exactly, or regular expressions when enabled_regex_matching is true.
    values: list[str] = field(default_factory=list)
    #: Treat values as regular expressions.
    enabled_regex_matching: bool = False
    #: Regex results remembered per attribute value (default 128).
    cache_max_size: int = 128
    #: Sample the traces where no value matches.
    invert_match: bool = False

    def validate(self) -> None:
        errors = []
        if not self.key:
            errors.append("key: required")
        if not self.values:
            errors.append("values: at least one value is required")
        if self.cache_max_size < 0:
            errors.append("cache_max_size: must be >= 0")
        if self.enabled_regex_matching:
            for i, value in enumerate(self.values):
                try:
                    re.compile(value)
                except re.error as exc:
                    errors.append(f"values::{i}: invalid regular expression {value!r}: {exc}")
        raise_if(errors)


class StringAttribute:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.key = config.key
        self.key_bytes = key_needle(config.key)
        self.invert = config.invert_match
        self.regex = config.enabled_regex_matching
        self.values = frozenset(v for v in config.values if v)
        # Exact values must appear verbatim in the bytes; a trace without any of them cannot match.
        self.value_bytes = [string_needle(v) for v in self.values]
        self.patterns = [re.compile(v) for v in config.values] if self.regex else []
        self.cache: OrderedDict[str, bool] = OrderedDict()
        self.cache_size = config.cache_max_size or 128

    def _matches(self, value: Any) -> bool:
        if value.WhichOneof("value") != "string_value":
            return False
        text = value.string_value
        if not self.regex:
            return text in self.values
        hit = self.cache.get(text)
        if hit is None:
            hit = any(p.search(text) for p in self.patterns)
            self.cache[text] = hit
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return hit

    def evaluate(self, trace: Any) -> Decision:
        matched = (self.regex or any(trace.may_contain(v) for v in self.value_bytes)) and any_attribute(
            trace, self.key, self.key_bytes, self._matches, skip_empty_span_strings=True)
        return Decision.SAMPLED if matched != self.invert else Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        """Regular expressions remember their results (``cache``), but nothing a retry would see differently."""
        candidates = may_contain(traces, self.key_bytes)
        if not self.regex:  # and one of the exact values, as evaluate asks
            values = [False] * len(traces)
            for needle in self.value_bytes:
                values = [found or hit for found, hit in zip(values, may_contain(traces, needle), strict=True)]
            candidates = [key and value for key, value in zip(candidates, values, strict=True)]
        return prefiltered(self, traces, candidates)


KIND = PolicyKind("string_attribute", Config, lambda name, config, build, clock: StringAttribute(name, config))
