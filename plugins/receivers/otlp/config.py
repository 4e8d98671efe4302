"""Config of the ``otlp`` receiver, key for key the Collector's (``protocols::grpc``, ``protocols::http``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import (
    ConfigError,
    Duration,
    GRPCServerConfig,
    HTTPServerConfig,
    optional_sections,
)


@dataclass(frozen=True)
class GrpcConfig(GRPCServerConfig):
    """The OTLP/gRPC server: the shared gRPC server block (``gateway.configgrpc``) with the receiver's defaults."""

    #: host:port for OTLP/gRPC. Default localhost:4317 (as the Collector): write 0.0.0.0:4317 to accept other hosts.
    #: With transport: unix, the path of the socket.
    endpoint: str = "localhost:4317"
    #: Largest request accepted, in MiB after decompression; larger ones get RESOURCE_EXHAUSTED. Default 64.
    max_recv_msg_size_mib: int = 64
    #: otelgw: bytes of requests being decoded and delivered at once, in MiB; more get RESOURCE_EXHAUSTED with
    #: RetryInfo. 0 = no cap of its own (a memory_limiter still applies). Default 256.
    max_in_flight_size_mib: int = 256

    def validate(self) -> None:
        errors = self.server_errors()
        if self.max_in_flight_size_mib < 0:
            errors.append(f"max_in_flight_size_mib: must be >= 0 (0 = no cap), got {self.max_in_flight_size_mib}")
        if errors:
            raise ConfigError(errors)


def _absolute(path: str) -> str:
    # The Collector turns "v1/traces" into "/v1/traces" rather than rejecting it.
    return path if path.startswith("/") else "/" + path


@dataclass(frozen=True)
class HttpConfig(HTTPServerConfig):
    """The OTLP/HTTP server: the shared HTTP server block (``gateway.confighttp``) with the receiver's paths and
    limits."""

    #: host:port for OTLP/HTTP. Default localhost:4318 (as the Collector): write 0.0.0.0:4318 to accept other hosts.
    endpoint: str = "localhost:4318"
    #: Path that accepts traces; a missing leading "/" is added. Default /v1/traces.
    traces_url_path: str = "/v1/traces"
    #: Path that accepts metrics. Default /v1/metrics.
    metrics_url_path: str = "/v1/metrics"
    #: Path that accepts logs. Default /v1/logs.
    logs_url_path: str = "/v1/logs"
    #: otelgw: bytes of request bodies being read, decoded and delivered at once, in MiB (after decompression);
    #: more get 429 with Retry-After. 0 = no cap of its own (a memory_limiter still applies). Default 256.
    max_in_flight_size_mib: int = 256
    #: Once a request head has started to arrive, all of it must arrive within this long, else the connection is
    #: closed (slowloris). Default 10s.
    read_header_timeout: Duration = 10.0
    #: A connection with no request under way is closed after this long (also one that never sends a byte).
    #: Default 60s.
    idle_timeout: Duration = 60.0
    #: A request body must arrive within this long of its head; a slower one gets 408 and the connection is
    #: closed. 0 = no deadline. Default 30s.
    read_timeout: Duration = 30.0
    #: otelgw: open connections at most; more are closed on accept, logged and counted. 0 = no bound.
    #: Default 1000.
    max_connections: int = 1000

    def __post_init__(self) -> None:
        for key in ("traces_url_path", "metrics_url_path", "logs_url_path"):
            object.__setattr__(self, key, _absolute(getattr(self, key)))

    def validate(self) -> None:
        errors = self.listen_errors()
        if self.max_in_flight_size_mib < 0:
            errors.append(f"max_in_flight_size_mib: must be >= 0 (0 = no cap), got {self.max_in_flight_size_mib}")
        if self.read_header_timeout <= 0:
            errors.append(f"read_header_timeout: must be > 0, got {self.read_header_timeout:g}s")
        if self.idle_timeout <= 0:
            errors.append(f"idle_timeout: must be > 0, got {self.idle_timeout:g}s")
        if self.read_timeout < 0:
            errors.append(f"read_timeout: must be >= 0 (0 = no deadline), got {self.read_timeout:g}s")
        if self.max_connections < 0:
            errors.append(f"max_connections: must be >= 0 (0 = no bound), got {self.max_connections}")
        paths = (self.traces_url_path, self.metrics_url_path, self.logs_url_path)
        if len(set(paths)) != len(paths):
            errors.append(f"traces_url_path: the traces, metrics and logs paths must differ, "
                          f"got {', '.join(paths)}")
        if errors:
            raise ConfigError(errors)


@optional_sections
@dataclass(frozen=True)
class Protocols:
    """A protocol listed in the YAML is on (``grpc:`` alone means all defaults); one not listed is off."""

    #: The OTLP/gRPC server, or None when off.
    grpc: GrpcConfig | None = None
    #: The OTLP/HTTP server, or None when off.
    http: HttpConfig | None = None


def _both_protocols() -> Protocols:
    return Protocols(grpc=GrpcConfig(), http=HttpConfig())


@dataclass(frozen=True)
class Config:
    #: Which servers to run: ``grpc`` and/or ``http``, each with its settings. Default: both, with defaults; a
    #: protocol left out of the YAML is off, as in the Collector.
    protocols: Protocols = field(default_factory=_both_protocols)

    def validate(self) -> None:
        grpc, http = self.protocols.grpc, self.protocols.http
        if grpc is None and http is None:
            raise ConfigError("protocols: must specify at least one protocol (grpc or http)")
        if grpc and http and grpc.endpoint == http.endpoint and not grpc.endpoint.endswith(":0"):
            raise ConfigError(f"protocols: grpc and http cannot both listen on {grpc.endpoint}")
