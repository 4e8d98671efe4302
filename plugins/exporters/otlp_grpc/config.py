from __future__ import annotations

from dataclasses import dataclass, field

from gateway import (
    ConfigError,
    Duration,
    GRPCClientConfig,
    QueueConfig,
    RetryConfig,
    split_host_port,
)

# Targets grpc resolves itself; passed through untouched.
_GRPC_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")


def parse_endpoint(endpoint: str, insecure: bool) -> tuple[str, bool]:
    """The grpc target and whether to use TLS. ``http://`` / ``https://`` prefixes decide TLS when present."""
    text = endpoint.strip()
    secure = not insecure
    if text.startswith(_GRPC_SCHEMES):
        return text, secure
    for scheme, scheme_secure in (("https://", True), ("http://", False)):
        if text.startswith(scheme):
            text, secure = text[len(scheme):].rstrip("/"), scheme_secure
            break
    if text.startswith(":"):
        raise ValueError(f"{endpoint!r} has no host; expected host:port, e.g. collector:4317")
    split_host_port(text)
    return text, secure


@dataclass(frozen=True)
class Config(GRPCClientConfig):
    """The shared gRPC client block (``gateway.configgrpc``: endpoint, tls, headers, compression, keepalive,
    balancer_name, wait_for_ready, auth...) with the exporter helper's timeout, queue and retry."""

    #: host:port of the OTLP/gRPC server, e.g. collector:4317 (required). An http:// or https:// prefix
    #: chooses plaintext or TLS and overrides tls::insecure; dns:///, unix: targets are passed to grpc as is.
    endpoint: str = ""
    #: Deadline of one send attempt (default 5s).
    timeout: Duration = 5.0
    #: In-memory sending queue (default on: 10 consumers, 1000 requests).
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    #: Retry with exponential backoff (default on: 5s initial, 30s max interval, give up after 300s).
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        errors = []
        secure = False
        if not self.endpoint.strip():
            errors.append("endpoint: required, e.g. collector:4317")
        else:
            try:
                secure = parse_endpoint(self.endpoint, self.tls.insecure)[1]
            except ValueError as exc:
                errors.append(f"endpoint: {exc}")
        if secure and self.tls.insecure_skip_verify:
            errors.append("tls::insecure_skip_verify: not supported by the gRPC client; set tls::ca_file to "
                          "the server's CA or self-signed certificate instead")
        errors.extend(self.client_errors())
        if self.timeout <= 0:
            errors.append("timeout: must be > 0")
        if errors:
            raise ConfigError(errors)
