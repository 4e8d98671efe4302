from __future__ import annotations

from dataclasses import dataclass, field, fields

from gateway import (
    ConfigError,
    Duration,
    GRPCClientConfig,
    OtlpGrpcConfig,
    QueueConfig,
    RetryConfig,
    split_host_port,
)

#: Jaeger's collector ports: api_v2 gRPC, and its native OTLP/gRPC receiver.
DEFAULT_PORTS = {"grpc": 14250, "otlp": 4317}
_GRPC_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")


def with_default_port(endpoint: str, port: int) -> str:
    """``jaeger`` → ``jaeger:<port>``; an endpoint with a port, or a target grpc resolves itself, is kept."""
    text = endpoint.strip()
    if text.startswith(_GRPC_SCHEMES):
        return text
    scheme = ""
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            scheme, text = prefix, text[len(prefix):].rstrip("/")
    try:
        split_host_port(text)
    except ValueError:
        if text and (":" not in text or (text.startswith("[") and text.endswith("]"))):
            return f"{scheme}{text}:{port}"
    return scheme + text


@dataclass(frozen=True)
class Config(GRPCClientConfig):
    """The shared gRPC client block (``gateway.configgrpc``) with the protocol and the exporter helper's settings."""

    #: grpc: Jaeger's api_v2 CollectorService/PostSpans (default port 14250). otlp: OTLP/gRPC, which Jaeger
    #: accepts natively since 1.35 (default port 4317), sent by the otlp_grpc exporter with the keys below.
    protocol: str = "grpc"
    #: host[:port] of the Jaeger collector, e.g. jaeger-collector:14250 (required); without a port, the
    #: protocol's default port. http:// or https:// chooses plaintext or TLS, as in otlp_grpc.
    endpoint: str = ""
    #: Deadline of one send attempt (default 5s).
    timeout: Duration = 5.0
    #: In-memory sending queue (default on: 10 consumers, 1000 requests).
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    #: Retry with exponential backoff (default on: 5s initial, 30s max interval, give up after 300s).
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    @property
    def target(self) -> str:
        """The endpoint with the protocol's default port filled in."""
        return with_default_port(self.endpoint, DEFAULT_PORTS.get(self.protocol, DEFAULT_PORTS["grpc"]))

    def otlp_grpc(self) -> OtlpGrpcConfig:
        """The same settings as an otlp_grpc exporter config: what ``protocol: otlp`` runs, and the gRPC client
        settings ``protocol: grpc`` shares."""
        shared = {f.name: getattr(self, f.name) for f in fields(GRPCClientConfig)}
        return OtlpGrpcConfig(**{**shared, "endpoint": self.target}, timeout=self.timeout,
                              sending_queue=self.sending_queue, retry_on_failure=self.retry_on_failure)

    def validate(self) -> None:
        errors = []
        if self.protocol not in DEFAULT_PORTS:
            errors.append(f"protocol: must be grpc or otlp, got {self.protocol!r}")
        if not self.endpoint.strip():
            errors.append("endpoint: required, e.g. jaeger-collector:14250")
        try:
            self.otlp_grpc().validate()
        except ConfigError as exc:
            errors.extend(m for m in exc.messages if not m.startswith("endpoint: required"))
        if errors:
            raise ConfigError(errors)
