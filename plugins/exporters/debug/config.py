from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError


@dataclass(frozen=True)
class Config:
    #: basic (one summary line per batch), normal (one line per span / point / record) or detailed (full dump).
    verbosity: str = "basic"
    #: Batches printed per second before sampling starts (the Collector's sampling_initial).
    sampling_initial: int = 2
    #: After that, print one batch in this many within the same second (the Collector's sampling_thereafter).
    sampling_thereafter: int = 1

    def validate(self) -> None:
        errors = []
        if self.verbosity not in ("basic", "normal", "detailed"):
            errors.append(f"verbosity: must be basic, normal or detailed, got {self.verbosity!r}")
        if self.sampling_initial < 0:
            errors.append("sampling_initial: must be >= 0")
        if self.sampling_thereafter < 1:
            errors.append("sampling_thereafter: must be >= 1")
        if errors:
            raise ConfigError(errors)
