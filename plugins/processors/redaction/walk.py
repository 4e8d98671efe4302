"""Apply a ``RuleSet`` to the places of one item: attribute maps, nested AnyValues, names, bodies; write summaries.

Only items the prefilter flagged (or every item, when it cannot help) come here, with the value rules that can
match in them. Loops stay flat: one decision per key from a cache, and values are read only when a rule needs them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from .actions import Action
from .rules import KeyDecision, RuleSet, ValueRule

__all__ = ["Stats", "as_string", "redact_any", "redact_attributes", "redact_name", "write_summary"]

UNCHANGED, CHANGED, DROPPED = 0, 1, 2
_CHECK, _IGNORE, _REDACT, _BLOCK = KeyDecision.CHECK, KeyDecision.IGNORE, KeyDecision.REDACT, KeyDecision.BLOCK
_SCALARS = ("int_value", "double_value", "bool_value")
_NUMBERS = frozenset(("int_value", "double_value"))
_NESTED = ("kvlist_value", "array_value")


class Stats:
    """What happened in one attribute map (and the values nested in it), for the summary attributes."""

    __slots__ = ("allowed", "ignored", "masked", "redacted")

    def __init__(self) -> None:
        self.redacted: list[str] = []
        self.masked: list[str] = []
        self.allowed: list[str] = []
        self.ignored = 0

    def __bool__(self) -> bool:
        return bool(self.redacted or self.masked or self.allowed or self.ignored)


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind) if kind else None


def as_string(value: Any) -> str:
    """The Collector's AsString: text of scalars, JSON of arrays and maps, base64 of bytes."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("kvlist_value", "array_value"):
        return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
    if kind is None:
        return ""
    return str(_plain(value))


def redact_attributes(attrs: Any, rules: RuleSet, active: Sequence[ValueRule], stats: Stats | None,
                      prefix: str = "", indexes: Sequence[int] | None = None) -> None:
    """Keys decide first (ignore, remove, replace whole); value rules in ``active`` replace what they match.
    ``indexes``: visit only these attributes (in increasing order), the ones the prefilter found something in."""
    removals: list[int] = []
    decide = rules.key_decision
    counting = stats is not None and bool(rules.allowed_values)
    pairs = enumerate(attrs) if indexes is None else ((index, attrs[index]) for index in indexes)
    for index, kv in pairs:
        decision, action = decide(kv.key)
        if decision is _CHECK:
            if not active and not counting and (
                    not rules.nested_keys_matter or kv.value.WhichOneof("value") not in _NESTED):
                continue
            outcome = redact_any(kv.value, rules, active, stats, prefix + kv.key)
        elif decision is _BLOCK:
            outcome = _replace_whole(kv.value, rules, action, stats, prefix + kv.key)  # type: ignore[arg-type]
        elif decision is _REDACT:
            outcome = DROPPED
        else:
            if decision is _IGNORE and stats is not None:
                stats.ignored += 1
            continue
        if outcome == DROPPED:
            removals.append(index)
            if stats is not None:
                stats.redacted.append(prefix + kv.key)
        elif outcome == CHANGED and stats is not None:
            stats.masked.append(prefix + kv.key)
    for index in reversed(removals):
        del attrs[index]


def _replace_whole(value: Any, rules: RuleSet, action: Action, stats: Stats | None, path: str) -> int:
    kind = value.WhichOneof("value")
    if kind is None:
        return UNCHANGED  # an attribute without a value discloses nothing
    if kind in _NUMBERS and not rules.block_numbers:
        return UNCHANGED  # a count or size under a secret-looking key (input_tokens) is no secret
    text = as_string(value)
    if action is Action.DROP:
        return DROPPED if rules.replace_whole(text, Action.MASK) is not None else _allowed(stats, path)
    replacement = rules.replace_whole(text, action)
    if replacement is None:
        return _allowed(stats, path)
    value.string_value = replacement
    return CHANGED


def _allowed(stats: Stats | None, path: str) -> int:
    if stats is not None:
        stats.allowed.append(path)
    return UNCHANGED


def redact_any(value: Any, rules: RuleSet, active: Sequence[ValueRule], stats: Stats | None, path: str) -> int:
    """Redact one AnyValue in place; maps and arrays recurse (nested changes are recorded with their paths)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if stats is not None and rules.allowed_values and rules.allowed_spans(text):
            stats.allowed.append(path)
        new, drop = rules.redact_text(text, active)
        if drop:
            return DROPPED
        if new is not None:
            value.string_value = new
            return CHANGED
        return UNCHANGED
    if kind == "kvlist_value":
        redact_attributes(value.kvlist_value.values, rules, active, stats, path + ".")
        return UNCHANGED
    if kind == "array_value":
        elements = value.array_value.values
        removals = []
        for index, element in enumerate(elements):
            label = f"{path}.[{index}]" if path else f"[{index}]"
            outcome = redact_any(element, rules, active, stats, label)
            if outcome == DROPPED:
                removals.append(index)
                if stats is not None:
                    stats.redacted.append(label)
            elif outcome == CHANGED and stats is not None:
                stats.masked.append(label)
        for index in reversed(removals):
            del elements[index]
        return UNCHANGED
    if kind == "bytes_value":
        try:
            text = value.bytes_value.decode("utf-8")
        except UnicodeDecodeError:
            return UNCHANGED  # binary, not text
        new, drop = rules.redact_text(text, active)
        if drop:
            return DROPPED
        if new is not None:
            value.bytes_value = new.encode("utf-8")
            return CHANGED
        return UNCHANGED
    if kind in _SCALARS and rules.redact_all_types:
        new, drop = rules.redact_text(as_string(value), active)
        if drop:
            return DROPPED
        if new is not None:
            value.string_value = new
            return CHANGED
    return UNCHANGED


def redact_name(owner: Any, field: str, rules: RuleSet, active: Sequence[ValueRule], stats: Stats | None,
                label: str) -> None:
    """A string field that cannot be removed (span name, event name, status message): drop = the mask text."""
    text = getattr(owner, field)
    if not text:
        return
    new, drop = rules.redact_text(text, active)
    if drop:
        new = rules.replacer.mask
    if new is not None:
        setattr(owner, field, new)
        if stats is not None:
            stats.masked.append(label)


def write_summary(attrs: Any, stats: Stats, mode: str, body: bool = False) -> None:
    """The Collector's redaction.* attributes: key lists (debug) and counts (info, debug), merged into existing."""
    prefix = "redaction.body." if body else "redaction."
    index = {kv.key: kv for kv in attrs if kv.key.startswith("redaction.")}
    for kind, keys in (("redacted", stats.redacted), ("masked", stats.masked), ("allowed", stats.allowed)):
        if not keys:
            continue
        if mode == "debug":
            names = list(keys)
            existing = index.get(f"{prefix}{kind}.keys")
            if existing is not None and existing.value.string_value:
                names.extend(existing.value.string_value.split(","))
            _put(attrs, index, f"{prefix}{kind}.keys").string_value = ",".join(sorted(names))
        _add_count(attrs, index, f"{prefix}{kind}.count", len(keys))
    if stats.ignored:
        _add_count(attrs, index, f"{prefix}ignored.count", stats.ignored)


def _put(attrs: Any, index: dict[str, Any], key: str) -> Any:
    kv = index.get(key)
    if kv is None:
        kv = attrs.add()
        kv.key = key
        index[key] = kv
    return kv.value


def _add_count(attrs: Any, index: dict[str, Any], key: str, count: int) -> None:
    value = _put(attrs, index, key)
    value.int_value = value.int_value + count
