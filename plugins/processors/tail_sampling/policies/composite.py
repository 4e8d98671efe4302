"""``composite``: sub-policies in ``policy_order``, each with a share of ``max_total_spans_per_second``.

A trace is sampled by the first sub-policy (in policy_order, then the unlisted ones in their listed order) that
samples it, if that sub-policy's budget for the current second, and the composite's total, still hold the
trace's spans; otherwise the trace is not sampled, as in the Collector. ``rate_allocation`` gives a sub-policy
``percent`` of the total (0 = an equal share). Sub-policies without an allocation share what is left, so an
``always_sample`` listed last fills the remaining capacity, as the Collector's README describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from .base import Build, Decision, Policy, PolicyKind, SubPolicyConfig, duplicate_names

__all__ = ["KIND"]


@dataclass(frozen=True)
class RateAllocation:
    #: Name of a composite sub-policy.
    policy: str = ""
    #: Its share of max_total_spans_per_second, in percent.
    percent: int = 0


@dataclass(frozen=True)
class Config:
    #: Spans per second the composite samples in total (required, > 0).
    max_total_spans_per_second: int = 0
    #: Sub-policy names in evaluation order.
    policy_order: list[str] = field(default_factory=list)
    #: Sub-policies (each {name, type, <type>: {...}}; any type but composite and drop).
    composite_sub_policy: list[SubPolicyConfig] = field(default_factory=list)
    #: Budget per sub-policy.
    rate_allocation: list[RateAllocation] = field(default_factory=list)

    def validate(self) -> None:
        errors = duplicate_names(self.composite_sub_policy, "composite_sub_policy")
        if self.max_total_spans_per_second <= 0:
            errors.append("max_total_spans_per_second: must be > 0")
        if not self.composite_sub_policy:
            errors.append("composite_sub_policy: at least one sub-policy is required")
        names = {sub.name for sub in self.composite_sub_policy}
        errors.extend(f"policy_order::{i}: no composite_sub_policy is named {name!r}"
                      for i, name in enumerate(self.policy_order) if name not in names)
        total = 0
        for i, allocation in enumerate(self.rate_allocation):
            if allocation.policy not in names:
                errors.append(f"rate_allocation::{i}::policy: no composite_sub_policy is named {allocation.policy!r}")
            if not 0 <= allocation.percent <= 100:
                errors.append(f"rate_allocation::{i}::percent: must be between 0 and 100, got {allocation.percent}")
            total += max(0, allocation.percent)
        if total > 100:
            errors.append(f"rate_allocation: percentages add up to {total}, more than 100")
        raise_if(errors)


class _Budget:
    __slots__ = ("limit", "spent")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.spent = 0


class Composite:
    def __init__(self, name: str, config: Config, policies: list[Policy], clock: Callable[[], float]) -> None:
        self.name = name
        self.clock = clock
        total = config.max_total_spans_per_second
        self.total = _Budget(total)
        by_name = dict(zip([sub.name for sub in config.composite_sub_policy], policies, strict=True))
        order = [n for n in dict.fromkeys(config.policy_order) if n in by_name]
        order += [n for n in by_name if n not in order]
        shares = {a.policy: (a.percent * total / 100 if a.percent > 0 else total / len(by_name))
                  for a in config.rate_allocation}
        leftover = _Budget(max(0.0, total - sum(shares.values())))
        self.subs = [(by_name[n], _Budget(shares[n]) if n in shares else leftover) for n in order]
        self.budgets = {id(b): b for _, b in self.subs} | {id(self.total): self.total}
        self.second = -1

    def evaluate(self, trace: Any) -> Decision:
        second = int(self.clock())
        if second != self.second:
            self.second = second
            for budget in self.budgets.values():
                budget.spent = 0
        for policy, budget in self.subs:
            if policy.evaluate(trace) is Decision.SAMPLED:
                spans = trace.span_count
                if budget.spent + spans <= budget.limit and self.total.spent + spans <= self.total.limit:
                    budget.spent += spans
                    self.total.spent += spans
                    trace.composite_policy = policy.name
                    return Decision.SAMPLED
                return Decision.NOT_SAMPLED
        return Decision.NOT_SAMPLED


def _build(name: str, config: Config, build: Build, clock: Callable[[], float]) -> Composite:
    return Composite(name, config, [build(sub) for sub in config.composite_sub_policy], clock)


KIND = PolicyKind("composite", Config, _build, sub_policy_key="composite_sub_policy")
