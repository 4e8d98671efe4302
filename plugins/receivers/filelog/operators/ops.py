"""The stateless operators: parsers (json, regex, key/value, time, severity) and transformers (move, copy, add,
remove, flatten, filter, router)."""

from __future__ import annotations

import random
import re
from typing import Any

import orjson

from .base import ErrorSink, Operator
from .config import (
    AddConfig,
    FilterConfig,
    KeyValueParserConfig,
    MoveConfig,
    ParserConfig,
    RegexParserConfig,
    RemoveConfig,
    RouterConfig,
    SeverityConfig,
    SeverityParserConfig,
    TimeParserConfig,
    TimestampConfig,
)
from .entry import Entry, Field
from .expr import Expression
from .timeparse import SeverityMapper, TimeParser

__all__ = ["AddOp", "CopyOp", "FilterOp", "FlattenOp", "JsonParserOp", "KeyValueParserOp", "MoveOp",
           "RegexParserOp", "RemoveOp", "RouterOp", "SeverityParserOp", "TimeParserOp", "condition_of"]


class ParseError(ValueError):
    pass


def condition_of(text: str) -> Expression | None:
    return Expression(text) if text else None


class _TimeStep:
    def __init__(self, config: TimestampConfig | TimeParserConfig) -> None:
        self.field = Field.parse(config.parse_from)
        self.get = self.field.getter()
        self.parser = TimeParser(config.layout_type, config.layout, config.location or None)

    def apply(self, entry: Entry) -> None:
        value = self.get(entry)
        if value is None:
            raise ParseError(f"timestamp field {self.field} is missing")
        entry.timestamp = self.parser.parse(value)


class _SeverityStep:
    def __init__(self, config: SeverityConfig | SeverityParserConfig) -> None:
        self.field = Field.parse(config.parse_from)
        self.get = self.field.getter()
        self.mapper = SeverityMapper(config.preset, dict(config.mapping), config.overwrite_text)

    def apply(self, entry: Entry) -> None:
        value = self.get(entry)
        if value is None:
            raise ParseError(f"severity field {self.field} is missing")
        number = self.mapper.number(value)
        entry.severity = number
        entry.severity_text = self.mapper.text(value, number)


class _Parser(Operator):
    """Parse ``parse_from`` into a map written to ``parse_to``, then the optional timestamp and severity blocks."""

    def __init__(self, config: ParserConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.parse_from = Field.parse(config.parse_from)
        self.parse_to = Field.parse(config.parse_to)
        self.time = _TimeStep(config.timestamp) if config.timestamp else None
        self.severity = _SeverityStep(config.severity) if config.severity else None
        # the common case, body string → attributes, without Field lookups
        self.body_to_attributes = self.parse_from == Field("body", ()) and self.parse_to == Field("attributes", ())

    def parse(self, value: Any) -> dict[str, Any]:
        raise NotImplementedError

    def process(self, entry: Entry) -> None:
        if self.body_to_attributes:
            entry.attributes.update(self.parse(entry.body))
        else:
            value = self.parse_from.get(entry)
            if value is None:
                raise ParseError(f"{self.parse_from} is missing")
            parsed = self.parse(value)
            to = self.parse_to
            if not to.keys and to.root == "attributes":
                entry.attributes.update(parsed)
            elif not to.keys and to.root == "resource":
                entry.resource = {**(entry.resource or {}), **parsed}
            else:
                to.set(entry, parsed)
        if self.time is not None:
            self.time.apply(entry)
        if self.severity is not None:
            self.severity.apply(entry)


class JsonParserOp(_Parser):
    def process(self, entry: Entry) -> None:
        if not self.body_to_attributes or type(entry.body) is not str:
            super().process(entry)
            return
        try:
            parsed = orjson.loads(entry.body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"not JSON: {exc}") from None
        if type(parsed) is not dict:
            raise ParseError(f"expected a JSON object, got {type(parsed).__name__}")
        entry.attributes.update(parsed)
        if self.time is not None:
            self.time.apply(entry)
        if self.severity is not None:
            self.severity.apply(entry)

    def parse(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, str | bytes):
            raise ParseError(f"json_parser expects a string, got {type(value).__name__}")
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ParseError(f"expected a JSON object, got {type(parsed).__name__}")
        return parsed


#: RE2 (the Collector's regex engine) spells named groups (?<name>...); Python wants (?P<name>...).
_RE2_GROUP = re.compile(r"\(\?<(?![=!])")


def compile_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_RE2_GROUP.sub("(?P<", pattern))


class RegexParserOp(_Parser):
    def __init__(self, config: RegexParserConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config, outputs, errors)
        self.regex = compile_regex(config.regex)

    def parse(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, str):
            raise ParseError(f"regex_parser expects a string, got {type(value).__name__}")
        match = self.regex.search(value)
        if match is None:
            raise ParseError("regex pattern does not match")
        return {k: v for k, v in match.groupdict().items() if v is not None}


class KeyValueParserOp(_Parser):
    def __init__(self, config: KeyValueParserConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config, outputs, errors)
        self.delimiter = config.delimiter
        self.pair_delimiter = config.pair_delimiter or None

    def parse(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, str):
            raise ParseError(f"key_value_parser expects a string, got {type(value).__name__}")
        result: dict[str, Any] = {}
        for pair in value.split(self.pair_delimiter):
            pair = pair.strip()
            if not pair:
                continue
            key, sep, val = pair.partition(self.delimiter)
            if not sep:
                raise ParseError(f"cannot parse {pair[:50]!r}: no {self.delimiter!r} in it")
            result[key.strip().strip("\"'")] = val.strip().strip("\"'")
        return result


class TimeParserOp(Operator):
    def __init__(self, config: TimeParserConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.step = _TimeStep(config)

    def process(self, entry: Entry) -> None:
        self.step.apply(entry)


class SeverityParserOp(Operator):
    def __init__(self, config: SeverityParserConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.step = _SeverityStep(config)

    def process(self, entry: Entry) -> None:
        self.step.apply(entry)


class MoveOp(Operator):
    def __init__(self, config: MoveConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.source = Field.parse(config.from_)
        self.target = Field.parse(config.to)

    def process(self, entry: Entry) -> None:
        if not self.source.exists(entry):
            raise ParseError(f"{self.source} does not exist")
        self.target.set(entry, self.source.delete(entry))


class CopyOp(MoveOp):
    def process(self, entry: Entry) -> None:
        if not self.source.exists(entry):
            raise ParseError(f"{self.source} does not exist")
        value = self.source.get(entry)
        self.target.set(entry, Entry(value, {}, 0).copy().body)  # a deep copy: the two must not share a map


_EXPR_VALUE = re.compile(r"^\s*EXPR\((.*)\)\s*$", re.DOTALL)


class AddOp(Operator):
    def __init__(self, config: AddConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.field = Field.parse(config.field)
        match = _EXPR_VALUE.match(config.value) if isinstance(config.value, str) else None
        self.expression = Expression(match.group(1)) if match else None
        self.value = config.value

    def process(self, entry: Entry) -> None:
        if self.expression is not None:
            self.field.set(entry, self.expression.evaluate(entry))
        elif isinstance(self.value, dict | list):
            self.field.set(entry, Entry(self.value, {}, 0).copy().body)
        else:
            self.field.set(entry, self.value)


class RemoveOp(Operator):
    def __init__(self, config: RemoveConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.field = Field.parse(config.field)

    def process(self, entry: Entry) -> None:
        if not self.field.keys:
            entry.body = None
            return
        if not self.field.exists(entry):
            raise ParseError(f"{self.field} does not exist")
        self.field.delete(entry)


class FlattenOp(RemoveOp):
    """Lift the keys of a map one level up: body.a.b → body.b (stanza's flatten, body only)."""

    def __init__(self, config: RemoveConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config, outputs, errors)
        if not self.field.keys:
            raise ValueError("flatten needs a field inside a map (body.key, attributes.key, resource.key)")
        self.parent = Field(self.field.root, self.field.keys[:-1])

    def process(self, entry: Entry) -> None:
        value = self.field.get(entry)
        if not isinstance(value, dict):
            raise ParseError(f"{self.field} is not a map")
        self.field.delete(entry)
        for key, item in value.items():
            Field(self.parent.root, (*self.parent.keys, key)).set(entry, item)


class FilterOp(Operator):
    def __init__(self, config: FilterConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors)
        self.expression = Expression(config.expr)
        self.drop_ratio = config.drop_ratio

    def run(self, entries: list[Entry]) -> list[Entry]:
        true_for, ratio = self.expression.true_for, self.drop_ratio
        if ratio >= 1.0:
            kept = [e for e in entries if not true_for(e)]
        else:
            kept = [e for e in entries if not true_for(e) or random.random() >= ratio]
        if len(kept) < len(entries):
            self.errors.dropped("filtered", len(entries) - len(kept))
        return kept


class RouterOp(Operator):
    def __init__(self, config: RouterConfig, errors: ErrorSink) -> None:
        super().__init__(config.id, (), errors)
        self.routes = [(Expression(r.expr), r.outputs_tuple, dict(r.attributes)) for r in
                       (_Route(route.output, route.expr, route.attributes) for route in config.routes)]
        default = config.default
        self.default: tuple[str, ...] = tuple(default) if isinstance(default, list) else ((default,) if default
                                                                                            else ())

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(o for _, outputs, _ in self.routes for o in outputs) + self.default

    def route(self, entries: list[Entry]) -> list[tuple[str, list[Entry]]]:
        buckets: dict[tuple[str, ...], list[Entry]] = {}
        for entry in entries:
            for expression, outputs, attributes in self.routes:
                if expression.true_for(entry):
                    if attributes:
                        entry.attributes.update(attributes)
                    buckets.setdefault(outputs, []).append(entry)
                    break
            else:
                if self.default:
                    buckets.setdefault(self.default, []).append(entry)
        result: list[tuple[str, list[Entry]]] = []
        for outputs, batch in buckets.items():
            result.extend((o, batch if i == 0 else [e.copy() for e in batch]) for i, o in enumerate(outputs))
        return result


class _Route:
    def __init__(self, output: Any, expr: str, attributes: dict[str, Any]) -> None:
        self.outputs_tuple = tuple(output) if isinstance(output, list) else (str(output),)
        self.expr = expr
        self.attributes = attributes
