"""``and``: samples a trace when every sub-policy samples it (``and: {and_sub_policy: [...]}``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import raise_if

from .base import AllOf, Build, Decision, LeafPolicyConfig, PolicyKind, duplicate_names

__all__ = ["KIND"]


@dataclass(frozen=True)
class Config:
    #: Sub-policies (each {name, type, <type>: {...}}); all must sample.
    and_sub_policy: list[LeafPolicyConfig] = field(default_factory=list)

    def validate(self) -> None:
        raise_if(duplicate_names(self.and_sub_policy, "and_sub_policy")
                 + ([] if self.and_sub_policy else ["and_sub_policy: at least one sub-policy is required"]))


class And(AllOf):
    outcome = Decision.SAMPLED


def _build(name: str, config: Config, build: Build, clock: Any) -> And:
    return And(name, [build(sub) for sub in config.and_sub_policy])


KIND = PolicyKind("and", Config, _build, sub_policy_key="and_sub_policy")
