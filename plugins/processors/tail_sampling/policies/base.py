"""The one interface every policy implements, the decisions it returns, and how a policy type is described."""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..trace import TraceView

__all__ = ["Build", "Decision", "Policy", "PolicyKind"]


class Decision(enum.Enum):
    SAMPLED = "sampled"
    NOT_SAMPLED = "not_sampled"
    #: Only the ``drop`` policy returns it; it overrides every other decision.
    DROPPED = "dropped"


class Policy(Protocol):
    """A sampling rule: looks at one buffered trace and returns a decision. ``name`` is the configured name."""

    name: str

    def evaluate(self, trace: TraceView) -> Decision: ...


#: Builds the policy of one parsed ``PolicyConfig`` (used by combinators to build their sub-policies).
Build = Callable[[Any], Policy]


@dataclass(frozen=True)
class PolicyKind:
    """What the processor needs to know about one policy type (each policy module exports one as ``KIND``)."""

    type: str
    #: The dataclass of the type's YAML block (``latency: {threshold_ms: ...}``); its ``problems()`` lists errors.
    config: builtins.type[Any]
    #: ``build(name, config, build_sub_policy, clock)`` → the policy.
    build: Callable[[str, Any, Build, Callable[[], float]], Policy]
    #: For combinators: the block key holding the sub-policy list.
    sub_policy_key: str | None = None
    #: True when the policy reads span start and end times, which the processor then tracks on ingest.
    needs_times: bool = False
