"""``drop``: drops a trace when every sub-policy samples it; a drop overrides every other policy's decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from .base import AllOf, Build, Decision, LeafPolicyConfig, PolicyKind, duplicate_names

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Sub-policies (each {name, type, <type>: {...}}); when all sample, the trace is dropped.
    drop_sub_policy: list[LeafPolicyConfig] = field(default_factory=list)

    def validate(self) -> None:
        raise_if(duplicate_names(self.drop_sub_policy, "drop_sub_policy")
                 + ([] if self.drop_sub_policy else ["drop_sub_policy: at least one sub-policy is required"]))


class Drop(AllOf):
    outcome = Decision.DROPPED


def _build(name: str, config: Config, build: Build, clock: Any) -> Drop:
    return Drop(name, [build(sub) for sub in config.drop_sub_policy])


KIND = PolicyKind("drop", Config, _build, sub_policy_key="drop_sub_policy")
