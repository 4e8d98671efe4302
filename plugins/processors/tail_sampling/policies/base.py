"""The one interface every policy implements, the decisions it returns, and how a policy type is described."""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, not_
from typing import TYPE_CHECKING, Any, Protocol

from gateway import raise_if, tagged_block

if TYPE_CHECKING:
    from ..trace import TraceView

__all__ = ["AllOf", "BatchPolicy", "Build", "Decision", "LeafPolicyConfig", "Policy",
           "PolicyConfig", "PolicyKind", "SubPolicyConfig", "batch_evaluator", "duplicate_names"]


class Decision(enum.Enum):
    SAMPLED = "sampled"
    NOT_SAMPLED = "not_sampled"
    #: Only the ``drop`` policy returns it; it overrides every other decision.
    DROPPED = "dropped"


class Policy(Protocol):
    """A sampling rule: looks at one buffered trace and returns a decision. ``name`` is the configured name."""

    name: str

    def evaluate(self, trace: TraceView) -> Decision: ...


class BatchPolicy(Policy, Protocol):
    """A policy that can also decide many traces in one call, which the decision round prefers.

    ``evaluate_many(traces)`` must return, in order, exactly what ``evaluate`` returns for each trace, and must
    have no side effects: when it raises, the round evaluates the same traces one by one to count the failures.
    Stateful policies (rate_limiting, composite) therefore do not implement it. A combinator sets ``batchable``
    False while one of its sub-policies cannot be batched.
    """

    def evaluate_many(self, traces: Sequence[TraceView]) -> list[Decision]: ...


def batch_evaluator(policy: Policy) -> Callable[[Sequence[TraceView]], list[Decision]] | None:
    """``policy.evaluate_many`` when it stands for ``policy.evaluate``: None when the policy has none, when its
    ``evaluate`` was replaced on the instance (a wrapper must see every trace), or when it says it is not
    ``batchable`` now."""
    many = getattr(policy, "evaluate_many", None)
    if many is None or "evaluate" in getattr(policy, "__dict__", ()) or not getattr(policy, "batchable", True):
        return None
    return many  # type: ignore[no-any-return]


#: Builds the policy of one parsed ``PolicyConfig`` (used by combinators to build their sub-policies).
Build = Callable[[Any], Policy]


class AllOf:
    """``and`` and ``drop``: ``outcome`` for a trace that every sub-policy samples, NOT_SAMPLED otherwise."""

    outcome = Decision.SAMPLED

    def __init__(self, name: str, policies: list[Policy]) -> None:
        self.name = name
        self.policies = policies

    def evaluate(self, trace: TraceView) -> Decision:
        for policy in self.policies:
            if policy.evaluate(trace) is not Decision.SAMPLED:
                return Decision.NOT_SAMPLED
        return self.outcome

    @property
    def batchable(self) -> bool:
        return all(batch_evaluator(policy) is not None for policy in self.policies)

    def evaluate_many(self, traces: Sequence[TraceView]) -> list[Decision]:
        """Each sub-policy sees only the traces all before it sampled, as ``evaluate`` stops at the first one
        that does not; called only while ``batchable``."""
        out = [self.outcome] * len(traces)
        where: list[int] = list(range(len(traces)))
        current = traces
        for policy in self.policies:
            if not where:
                break
            many = batch_evaluator(policy)
            results = many(current) if many is not None else [policy.evaluate(trace) for trace in current]
            keep = list(map(is_, results, repeat(Decision.SAMPLED)))
            for position in compress(where, map(not_, keep)):
                out[position] = Decision.NOT_SAMPLED
            where = list(compress(where, keep))
            current = list(compress(current, keep))
        return out


@dataclass(frozen=True)
class PolicyKind:
    """What the processor needs to know about one policy type (each policy module exports one as ``KIND``)."""

    type: str
    #: The dataclass of the type's YAML block (``latency: {threshold_ms: ...}``), with its ``validate()``.
    config: builtins.type[Any]
    #: ``build(name, config, build_sub_policy, clock)`` → the policy.
    build: Callable[[str, Any, Build, Callable[[], float]], Policy]
    #: For combinators: the block key holding the sub-policy list.
    sub_policy_key: str | None = None
    #: True when the policy reads span start and end times, which the processor then tracks on ingest.
    needs_times: bool = False
    #: True when the policy asks which status codes a trace's spans have, which the processor then records on
    #: ingest (a bit per code per trace, read off the bytes in the same walk as the times).
    needs_status: bool = False


def _configs(allowed: str) -> Callable[[], Mapping[str, builtins.type[Any]]]:
    """The config dataclass of each policy type a list accepts: ``all``, ``leaf`` (``and``'s and ``drop``'s
    sub-policies) or ``composite`` (its sub-policies); looked up late, since the policy modules import this one."""

    def variants() -> Mapping[str, builtins.type[Any]]:
        from . import KINDS, LEAF_TYPES, SUB_POLICY_TYPES

        types = {"all": KINDS.keys(), "leaf": LEAF_TYPES, "composite": SUB_POLICY_TYPES["composite"]}[allowed]
        return {name: KINDS[name].config for name in types}

    return variants


@dataclass(frozen=True)
class PolicyConfig:
    """One policy as the Collector writes it: ``{name, type, <type>: {...}}``. The shared config decoder picks
    ``settings``' dataclass by ``type`` (a tagged block), so a wrong key or value is reported with its path."""

    #: Used in metrics and in the tailsampling.policy span attribute (required, unique in its list).
    name: str = ""
    #: Policy type, e.g. latency, status_code, probabilistic, and, drop, composite.
    type: str = ""
    #: The type's block, decoded into the type's own Config dataclass (see policies/<type>.py).
    settings: Any = field(default=None, metadata=tagged_block("type", _configs("all")))

    def validate(self) -> None:
        raise_if([] if self.name else ["name: required"])


@dataclass(frozen=True)
class LeafPolicyConfig(PolicyConfig):
    """A sub-policy of ``and`` or ``drop``: any type but the combinators."""

    settings: Any = field(default=None, metadata=tagged_block("type", _configs("leaf")))


@dataclass(frozen=True)
class SubPolicyConfig(PolicyConfig):
    """A sub-policy of ``composite``: a leaf type or ``and``."""

    settings: Any = field(default=None, metadata=tagged_block("type", _configs("composite")))


def duplicate_names(policies: Sequence[PolicyConfig], key: str) -> list[str]:
    """An error for every policy whose name an earlier one in the same list has."""
    seen: set[str] = set()
    errors = []
    for index, policy in enumerate(policies):
        if policy.name and policy.name in seen:
            errors.append(f"{key}::{index}::name: duplicate policy name {policy.name!r}")
        seen.add(policy.name)
    return errors
