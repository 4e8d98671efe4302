"""The attributes processor's actions and include/exclude, written as OTTL and compiled by ``gateway.ottl``.

Each action becomes one or two OTTL statements (insert is ``set(...) where attributes[k] == nil``, hash is
``set(attributes[k], SHA256(...))`` ...), and include/exclude become one condition guarding them all. The
processor therefore runs on the same compiled closures as ``transform``: resource-only matches (services,
resources) are decided once per envelope, and single attributes are found without building dicts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from gateway import client
from gateway.ottl import Ctx, from_any

from .config import Action, Match

__all__ = ["CONTEXTS", "from_context", "hash_matching", "literal", "match_condition", "statements"]

#: The OTTL context whose attributes the processor changes, per signal.
CONTEXTS = {"traces": "span", "logs": "log", "metrics": "datapoint"}


def literal(value: Any) -> str:
    """A Python scalar as an OTTL literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _attr(key: str) -> str:
    return f"attributes[{literal(key)}]"


def statements(action: Action) -> list[str]:
    """The OTTL statements of one action, in the item context."""
    key = _attr(action.key) if action.key else ""
    if action.action in ("insert", "update", "upsert"):
        if action.from_context:
            return []  # not OTTL: see from_context below
        source = literal(action.value) if action.value is not None else _attr(action.from_attribute)
        where = {"insert": f" where {key} == nil", "update": f" where {key} != nil", "upsert": ""}[action.action]
        return [f"set({key}, {source}){where}"]
    if action.action == "delete":
        out = [f"delete_key(attributes, {literal(action.key)})"] if action.key else []
        if action.pattern:
            out.append(f"delete_matching_keys(attributes, {literal(action.pattern)})")
        return out
    if action.action == "hash":
        # hash with ``pattern`` (keys chosen by a regular expression) has no OTTL form: see hash_matching.
        return [f"set({key}, SHA256({key})) where {key} != nil"] if action.key else []
    if action.action == "extract":
        return [f"merge_maps(attributes, ExtractPatterns({key}, {literal(action.pattern)}), \"upsert\") "
                f"where IsString({key})"]
    converter = {"int": "Int", "double": "Double", "string": "String"}[action.converted_type]
    return [f"set({key}, {converter}({key})) where {key} != nil"]


def from_context(action: Action) -> Callable[[Ctx], None]:
    """insert / update / upsert of ``key`` with a value of the request's client metadata (``gateway.client``);
    an item is left alone when the sender sent no such value."""
    source, key, mode = action.from_context, action.key, action.action

    def run(ctx: Ctx) -> None:
        value = client.from_context(source)
        if value is None:
            return
        attributes = ctx.item.attributes
        for kv in attributes:
            if kv.key == key:
                if mode != "insert":
                    kv.value.Clear()
                    kv.value.string_value = value
                return
        if mode != "update":
            attributes.add(key=key).value.string_value = value
    return run


def hash_matching(pattern: str) -> Callable[[Ctx], None]:
    """``hash`` with ``pattern``: the SHA-256 (hex) of every value whose key matches. OTTL has no per-key loop."""
    search = re.compile(pattern).search

    def run(ctx: Ctx) -> None:
        for kv in ctx.item.attributes:
            if search(kv.key):
                text = kv.value.string_value if kv.value.WhichOneof("value") == "string_value" \
                    else json.dumps(from_any(kv.value), default=str)
                kv.value.string_value = hashlib.sha256(text.encode()).hexdigest()
    return run


def _one_of(expr: str, values: list[str], regexp: bool) -> str:
    if regexp:
        return "(" + " or ".join(f"IsMatch({expr}, {literal(v)})" for v in values) + ")"
    return "(" + " or ".join(f"{expr} == {literal(v)}" for v in values) + ")"


def _key_values(prefix: str, items: list[Any], regexp: bool) -> list[str]:
    parts = []
    for kv in items:
        expr = f"{prefix}[{literal(kv.key)}]"
        if kv.value is None:
            parts.append(f"{expr} != nil")
        elif regexp:
            parts.append(f"IsMatch({expr}, {literal(str(kv.value))})")
        else:
            parts.append(f"{expr} == {literal(kv.value)}")
    return parts


def match_condition(match: Match, signal: str) -> str | None:
    """One OTTL condition that holds for items matching every property ``match`` sets for ``signal``."""
    regexp = match.match_type == "regexp"
    parts: list[str] = []
    if match.services:
        parts.append(_one_of('resource.attributes["service.name"]', match.services, regexp))
    parts.extend(_key_values("resource.attributes", match.resources, regexp))
    if match.libraries:
        options = []
        for library in match.libraries:
            name = (f"IsMatch(scope.name, {literal(library.name)})" if regexp
                    else f"scope.name == {literal(library.name)}")
            if library.version is not None:
                version = (f"IsMatch(scope.version, {literal(library.version)})" if regexp
                           else f"scope.version == {literal(library.version)}")
                name = f"{name} and {version}"
            options.append(f"({name})")
        parts.append("(" + " or ".join(options) + ")")
    parts.extend(_key_values("attributes", match.attributes, regexp))
    if signal == "traces":
        if match.span_names:
            parts.append(_one_of("name", match.span_names, regexp))
        if match.span_kinds:
            parts.append("(" + " or ".join(f"kind == {k}" for k in match.span_kinds) + ")")
    elif signal == "logs":
        if match.log_bodies:
            parts.append(_one_of("body", match.log_bodies, regexp))
        if match.log_severity_texts:
            parts.append(_one_of("severity_text", match.log_severity_texts, regexp))
        if match.log_severity_number is not None:
            number = match.log_severity_number
            check = f"severity_number >= {number.min}"
            if number.match_undefined:
                check = f"({check} or severity_number == 0)"
            parts.append(check)
    elif signal == "metrics" and match.metric_names:
        parts.append(_one_of("metric.name", match.metric_names, regexp))
    return " and ".join(parts) if parts else None
