"""The rule lists of the configuration, normalised: each rule with its YAML path, source and action."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .detectors import DETECTORS

__all__ = ["ACTIONS", "RuleSpec", "check_pattern", "compile_pattern", "detector_specs", "rule_specs"]

ACTIONS = ("mask", "hash", "length", "drop")


def compile_pattern(text: str) -> re.Pattern[str]:
    """Patterns are Python ``re``; ``\\d \\w \\s \\b`` are ASCII-only, as in the Collector's RE2."""
    return re.compile(text, re.ASCII)


@dataclass(frozen=True)
class RuleSpec:
    """One normalised rule: its YAML path, pattern (or detector name) and action ("" = the default action)."""

    path: str
    source: str
    action: str


def rule_specs(name: str, items: Any, errors: list[str]) -> Iterator[RuleSpec]:
    for index, item in enumerate(items):
        path = f"{name}::{index}"
        if isinstance(item, str):
            yield RuleSpec(path, item, "")
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - {"pattern", "action"})
            for key in unknown:
                errors.append(f"{path}::{key}: unknown key; valid keys are: action, pattern")
            pattern, action = item.get("pattern"), item.get("action") or ""
            if not isinstance(pattern, str) or not pattern:
                errors.append(f"{path}::pattern: required, a regular expression")
            elif _check_action(f"{path}::action", action, errors) and not unknown:
                yield RuleSpec(f"{path}::pattern", pattern, action)
        else:
            errors.append(f"{path}: expected a regular expression or {{pattern, action}}, got {item!r}")


def detector_specs(value: Any, errors: list[str]) -> Iterator[RuleSpec]:
    valid = ", ".join(sorted(DETECTORS))
    if value is None:
        return
    if isinstance(value, Mapping):
        entries: list[tuple[str, str, Any]] = [(f"detectors::{k}", str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        entries = [(f"detectors::{i}", str(v), None) for i, v in enumerate(value)]
    else:
        errors.append(f"detectors: expected a list of detector names or a mapping name: action, got {value!r}")
        return
    for path, name, setting in entries:
        if name not in DETECTORS:
            errors.append(f"{path}: unknown detector {name!r}; valid detectors are: {valid}")
            continue
        if isinstance(setting, Mapping):
            extra = sorted(set(setting) - {"action"})
            for key in extra:
                errors.append(f"{path}::{key}: unknown key; valid keys are: action")
            action = setting.get("action") or ""
            if _check_action(f"{path}::action", action, errors) and not extra:
                yield RuleSpec(path, name, action)
        elif setting is None or isinstance(setting, str):
            if _check_action(path, setting or "", errors):
                yield RuleSpec(path, name, setting or "")
        else:
            errors.append(f"{path}: expected an action ({', '.join(ACTIONS)}) or {{action: ...}}, got {setting!r}")


def _check_action(path: str, action: Any, errors: list[str]) -> bool:
    if action == "" or action in ACTIONS:
        return True
    errors.append(f"{path}: must be one of {', '.join(ACTIONS)}, got {action!r}")
    return False


def check_pattern(path: str, text: str, errors: list[str], non_empty: bool) -> None:
    try:
        pattern = compile_pattern(text)
    except re.error as exc:
        errors.append(f"{path}: invalid regular expression {text!r}: {exc}")
        return
    if non_empty and pattern.fullmatch("") is not None:
        errors.append(f"{path}: must not match the empty string, got {text!r}")
