from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import ConfigError, HTTPServerConfig


@dataclass(frozen=True)
class Config(HTTPServerConfig):
    """The shared HTTP server block (``gateway.confighttp``: endpoint, tls, auth, cors, response_headers,
    max_request_body_size, include_metadata) with the health check's own keys."""

    #: host:port the health server listens on. Default localhost:13133, as the Collector; a probe from outside the
    #: pod or host needs 0.0.0.0:13133 written out.
    endpoint: str = "localhost:13133"
    #: Path of the Collector-style readiness check. /health, /health/live and /health/ready are served too.
    path: str = "/"
    #: The Collector's deprecated pipeline check. Accepted so Collector configs load unchanged; ignored.
    check_collector_pipeline: dict[str, Any] | None = None

    def validate(self) -> None:
        errors = self.listen_errors()
        if not self.path.startswith("/"):
            errors.append(f"path: must start with '/', got {self.path!r}")
        if errors:
            raise ConfigError(errors)
