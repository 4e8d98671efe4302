"""Every policy type, one module each behind the ``Policy`` protocol of ``base.py``, and how to build them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    always_sample,
    and_,
    boolean_attribute,
    composite,
    drop,
    latency,
    numeric_attribute,
    ottl_condition,
    probabilistic,
    rate_limiting,
    span_count,
    status_code,
    string_attribute,
    trace_state,
)
from .base import Decision, Policy, PolicyKind, batch_evaluator

__all__ = ["KINDS", "LEAF_TYPES", "SUB_POLICY_TYPES", "Decision", "Policy", "PolicyKind", "batch_evaluator",
           "build_policy", "needs_status", "needs_times"]

KINDS: dict[str, PolicyKind] = {module.KIND.type: module.KIND for module in (
    always_sample, and_, boolean_attribute, composite, drop, latency, numeric_attribute, ottl_condition,
    probabilistic, rate_limiting, span_count, status_code, string_attribute, trace_state)}

#: Types that decide on their own (everything but the combinators).
LEAF_TYPES = frozenset(t for t, kind in KINDS.items() if kind.sub_policy_key is None)

#: What each combinator accepts as sub-policies, as in the Collector: ``and`` and ``drop`` take leaf policies,
#: ``composite`` takes leaf policies and ``and``.
SUB_POLICY_TYPES: dict[str, frozenset[str]] = {
    "and": LEAF_TYPES, "drop": LEAF_TYPES, "composite": LEAF_TYPES | {"and"}}


def build_policy(config: Any, clock: Callable[[], float]) -> Policy:
    """The policy of one parsed ``PolicyConfig`` (sub-policies included)."""
    kind = KINDS[config.type]
    return kind.build(config.name, config.settings, lambda sub: build_policy(sub, clock), clock)


def needs_times(config: Any) -> bool:
    """True when the policy or one of its sub-policies reads span start and end times."""
    return _needs(config, "needs_times")


def needs_status(config: Any) -> bool:
    """True when the policy or one of its sub-policies asks which status codes a trace has."""
    return _needs(config, "needs_status")


def _needs(config: Any, flag: str) -> bool:
    kind = KINDS[config.type]
    if getattr(kind, flag):
        return True
    if kind.sub_policy_key is None:
        return False
    return any(_needs(sub, flag) for sub in getattr(config.settings, kind.sub_policy_key))
