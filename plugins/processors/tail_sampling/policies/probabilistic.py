"""``probabilistic``: samples a share of traces, decided on the trace id alone so every gateway agrees.

The hash and threshold are the Collector's: FNV-1a 64 over ``hash_salt`` then the 16 trace id bytes, sampled
when the hash is <= MaxUint64 * sampling_percentage / 100. A trace therefore gets the same decision here as in a
Collector configured with the same salt and percentage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import repeat
from typing import Any

from gateway import raise_if, spanscan

from ..trace import trace_ids
from .base import Decision, PolicyKind

__all__ = ["KIND", "fnv1a_64", "fnv1a_64_python", "threshold"]

_OFFSET = 0xCBF29CE484222325
_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
DEFAULT_SALT = "default-hash-seed"


def fnv1a_64_python(data: bytes, state: int = _OFFSET) -> int:
    """FNV-1a 64 of ``data`` continued from ``state``; the twin of ``spanscan.fnv1a_64``."""
    for byte in data:
        state = ((state ^ byte) * _PRIME) & _MASK
    return state


fnv1a_64 = fnv1a_64_python if spanscan is None else spanscan.fnv1a_64


def threshold(percentage: float) -> int:
    """The largest hash that is sampled; percentages of 100 or more sample everything."""
    ratio = Fraction(percentage) / 100
    return min(_MASK, int(_MASK * ratio)) if ratio > 0 else -1


@dataclass(frozen=True)
class Config:
    #: Share of traces to sample, in percent (0-100). 0 samples none.
    sampling_percentage: float = 0.0
    #: Salt mixed into the hash; give layers with different rates different salts (default "default-hash-seed").
    hash_salt: str = ""

    def validate(self) -> None:
        if not 0 <= self.sampling_percentage <= 100:
            raise_if([f"sampling_percentage: must be between 0 and 100, got {self.sampling_percentage:g}"])


class Probabilistic:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.threshold = threshold(config.sampling_percentage)
        # FNV is a stream hash: fold the salt once, then only the trace id per trace.
        self.seeded = fnv1a_64((config.hash_salt or DEFAULT_SALT).encode())

    def evaluate(self, trace: Any) -> Decision:
        if fnv1a_64(trace.trace_id, self.seeded) <= self.threshold:
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        sampled, not_sampled, most = Decision.SAMPLED, Decision.NOT_SAMPLED, self.threshold
        return [sampled if hashed <= most else not_sampled
                for hashed in map(fnv1a_64, trace_ids(traces), repeat(self.seeded))]


KIND = PolicyKind("probabilistic", Config, lambda name, config, build, clock: Probabilistic(name, config))
