from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError, HTTPServerConfig


@dataclass(frozen=True)
class Config(HTTPServerConfig):
    """The shared HTTP server block (``gateway.confighttp``: endpoint, tls, auth, cors, response_headers,
    max_request_body_size, include_metadata), as the Collector's zpages."""

    #: host:port the pages are served on. Default localhost:55679, as the Collector's.
    endpoint: str = "localhost:55679"

    def validate(self) -> None:
        errors = self.listen_errors()
        if errors:
            raise ConfigError(errors)
