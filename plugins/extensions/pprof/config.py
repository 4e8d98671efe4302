from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError, split_host_port


@dataclass(frozen=True)
class Config:
    #: host:port the profile server listens on. Default localhost:1777, as the Collector's.
    endpoint: str = "localhost:1777"
    #: The Collector's block-profile fraction. Accepted so Collector configs load; Python has no block profile.
    block_profile_fraction: int = 0
    #: The Collector's mutex-profile fraction. Accepted so Collector configs load; Python has no mutex profile.
    mutex_profile_fraction: int = 0
    #: The Collector writes a CPU profile of the whole run to this file. Not supported: must stay empty.
    save_to_file: str = ""

    def validate(self) -> None:
        errors = []
        try:
            split_host_port(self.endpoint)
        except ValueError as exc:
            errors.append(f"endpoint: {exc}")
        if self.save_to_file:
            errors.append("save_to_file: not supported; take profiles from /debug/pprof/profile?seconds=N")
        if errors:
            raise ConfigError(errors)
