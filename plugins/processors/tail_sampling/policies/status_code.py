"""``status_code``: samples a trace when some span has one of the listed status codes (OK, ERROR, UNSET)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway import STATUS_BITS, raise_if

from ..trace import status_bits
from .base import Decision, PolicyKind

__all__ = ["KIND"]

_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


@dataclass(frozen=True)
class Config:
    #: Any of OK, ERROR, UNSET (required).
    status_codes: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not self.status_codes:
            raise_if(["status_codes: at least one status code is required (OK, ERROR or UNSET)"])
        raise_if([f"status_codes::{i}: must be one of OK, ERROR, UNSET, got {code!r}"
                  for i, code in enumerate(self.status_codes) if code not in _CODES])


class StatusCode:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        # ERROR first: the common rule.
        self.codes = sorted({_CODES[c] for c in config.status_codes}, reverse=True)
        self.bits = sum(STATUS_BITS[code] for code in self.codes)
        # The decision for each value the recorded bits can take (four bits: UNSET, OK, ERROR, other), then None
        # at index -1, "not recorded": such a trace is asked one by one.
        self.by_bits: tuple[Decision | None, ...] = (
            *(Decision.SAMPLED if seen & self.bits else Decision.NOT_SAMPLED for seen in range(16)), None)

    def evaluate(self, trace: Any) -> Decision:
        seen = trace.status_bits()  # the codes recorded on ingest, one bit each; -1 when not recorded
        if seen >= 0:
            return Decision.SAMPLED if seen & self.bits else Decision.NOT_SAMPLED
        if any(trace.has_status(code) for code in self.codes):
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        by_bits = self.by_bits
        out = [by_bits[seen] for seen in status_bits(traces)]
        if None in out:
            for i, decision in enumerate(out):
                if decision is None:
                    out[i] = self.evaluate(traces[i])
        return out  # type: ignore[return-value]


KIND = PolicyKind("status_code", Config, lambda name, config, build, clock: StatusCode(name, config),
                  needs_status=True)
