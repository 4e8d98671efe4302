"""The ``policies`` list: the Collector's tagged union (``{name, type, <type>: {...}}``) parsed into typed configs.

The YAML key ``and`` is a Python keyword, so a policy cannot be a dataclass with one field per type as the rest
of the configuration is. Each entry is parsed here instead into a ``PolicyConfig(name, type, settings)`` whose
``settings`` is the type's own config dataclass (decoded with the project's decoder, so unknown keys and wrong
types are reported the same way), with combinators' sub-policies parsed recursively. Every message carries its
YAML path, e.g. ``policies::2::composite::composite_sub_policy::0::latency::threshold_ms: must be >= 0``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import ConfigError, decode

from .policies import KINDS, SUB_POLICY_TYPES

__all__ = ["PolicyConfig", "parse_policies"]


@dataclass(frozen=True)
class PolicyConfig:
    #: Name used in metrics and in the tailsampling.policy span attribute (required, unique in its list).
    name: str
    #: Policy type, e.g. latency, status_code, probabilistic, and, drop, composite.
    type: str
    #: The type's block, decoded into the type's own Config dataclass (see policies/<type>.py).
    settings: Any = None


def _one(item: Any, allowed: frozenset[str], path: str, errors: list[str]) -> PolicyConfig | None:
    if not isinstance(item, Mapping):
        errors.append(f"{path}: expected a mapping with name and type, got {type(item).__name__} {item!r}")
        return None
    name, type_ = item.get("name"), item.get("type")
    for key in item:
        if key not in allowed and key not in ("name", "type", type_):
            errors.append(f"{path}::{key}: unknown key; valid keys are: name, type, {', '.join(sorted(allowed))}")
    if not isinstance(name, str) or not name:
        errors.append(f"{path}::name: required")
    if type_ not in allowed:
        got = "missing" if type_ is None else f"got {type_!r}"
        errors.append(f"{path}::type: must be one of {', '.join(sorted(allowed))}; {got}")
        return None
    for key in item:
        if key in allowed and key != type_:
            errors.append(f"{path}::{key}: not used by a policy of type {type_!r}")
    kind = KINDS[type_]
    block = item.get(type_)
    if block is not None and not isinstance(block, Mapping):
        errors.append(f"{path}::{type_}: expected a mapping, got {type(block).__name__} {block!r}")
        block = None
    try:
        settings = decode(kind.config(), block)
    except ConfigError as exc:
        errors.extend(exc.prefixed(f"{path}::{type_}").messages)
        return None
    reported = len(errors)
    if kind.sub_policy_key is not None:
        subs = parse_policies(getattr(settings, kind.sub_policy_key), SUB_POLICY_TYPES[type_],
                              f"{path}::{type_}::{kind.sub_policy_key}", errors)
        settings = dataclasses.replace(settings, **{kind.sub_policy_key: subs})
    if len(errors) == reported:  # a broken sub-policy would also read as a missing one: report it once
        errors.extend(f"{path}::{type_}::{message}" for message in settings.problems())
    return PolicyConfig(str(name or ""), type_, settings)


def parse_policies(raw: Any, allowed: frozenset[str], path: str, errors: list[str]) -> list[PolicyConfig]:
    """``raw`` (YAML list, or already parsed configs) as ``PolicyConfig``s; appends every problem to ``errors``."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        errors.append(f"{path}: expected a list, got {type(raw).__name__} {raw!r}")
        return []
    parsed: list[PolicyConfig] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        policy = item if isinstance(item, PolicyConfig) else _one(item, allowed, f"{path}::{index}", errors)
        if policy is None:
            continue
        if policy.name and policy.name in names:
            errors.append(f"{path}::{index}::name: duplicate policy name {policy.name!r}")
        names.add(policy.name)
        parsed.append(policy)
    return parsed
