"""``drop``: drops a trace when every sub-policy samples it; a drop overrides every other policy's decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from .base import Build, Decision, LeafPolicyConfig, Policy, PolicyKind, duplicate_names

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Sub-policies (each {name, type, <type>: {...}}); when all sample, the trace is dropped.
    drop_sub_policy: list[LeafPolicyConfig] = field(default_factory=list)

    def validate(self) -> None:
        raise_if(duplicate_names(self.drop_sub_policy, "drop_sub_policy")
                 + ([] if self.drop_sub_policy else ["drop_sub_policy: at least one sub-policy is required"]))


class Drop:
    def __init__(self, name: str, policies: list[Policy]) -> None:
        self.name = name
        self.policies = policies

    def evaluate(self, trace: Any) -> Decision:
        for policy in self.policies:
            if policy.evaluate(trace) is not Decision.SAMPLED:
                return Decision.NOT_SAMPLED
        return Decision.DROPPED


def _build(name: str, config: Config, build: Build, clock: Any) -> Drop:
    return Drop(name, [build(sub) for sub in config.drop_sub_policy])


KIND = PolicyKind("drop", Config, _build, sub_policy_key="drop_sub_policy")
