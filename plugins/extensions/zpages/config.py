from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError, split_host_port


@dataclass(frozen=True)
class Config:
    #: host:port the pages are served on. Default localhost:55679, as the Collector's.
    endpoint: str = "localhost:55679"

    def validate(self) -> None:
        try:
            split_host_port(self.endpoint)
        except ValueError as exc:
            raise ConfigError(f"endpoint: {exc}") from None
