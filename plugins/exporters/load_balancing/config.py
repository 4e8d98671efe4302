"""Configuration of ``load_balancing``: the Collector's ``loadbalancing`` keys (static resolver, trace routing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.netaddr import split_host_port
from plugins.exporters.otlp_grpc.config import Config as OtlpConfig

__all__ = ["Config", "ProtocolConfig", "ResolverConfig", "StaticResolverConfig"]


@dataclass(frozen=True)
class StaticResolverConfig:
    #: Backends as host:port (required), e.g. [sampler-0:4317, sampler-1:4317].
    hostnames: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ResolverConfig:
    #: A fixed list of backends. (The Collector's dns, k8s and aws_cloud_map resolvers are not supported yet.)
    static: StaticResolverConfig | None = None


@dataclass(frozen=True)
class ProtocolConfig:
    #: The otlp_grpc exporter's block (tls, headers, compression, timeout, sending_queue, retry_on_failure)
    #: used for every backend; the endpoint comes from the resolver.
    otlp: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    #: What decides the backend: traceID, so every span of a trace reaches the same backend.
    routing_key: str = "traceID"
    #: How to talk to the backends.
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    #: Where the backends are.
    resolver: ResolverConfig = field(default_factory=ResolverConfig)

    def backend(self, endpoint: str) -> OtlpConfig:
        """The otlp_grpc config of one backend; raises ConfigError (paths under protocol::otlp)."""
        config = decode(OtlpConfig(), {**self.protocol.otlp, "endpoint": endpoint})
        errors = validate_tree(config)
        if errors:
            raise ConfigError(errors)
        return config  # type: ignore[no-any-return]

    @property
    def endpoints(self) -> list[str]:
        return list(dict.fromkeys(self.resolver.static.hostnames)) if self.resolver.static else []

    def validate(self) -> None:
        errors = []
        if self.routing_key != "traceID":
            errors.append(f"routing_key: must be traceID (only trace routing is supported), got {self.routing_key!r}")
        if self.resolver.static is None or not self.resolver.static.hostnames:
            errors.append("resolver::static::hostnames: at least one backend host:port is required")
        for index, hostname in enumerate(self.resolver.static.hostnames if self.resolver.static else []):
            try:
                split_host_port(hostname)
            except ValueError as exc:
                errors.append(f"resolver::static::hostnames::{index}: {exc}")
        if "endpoint" in self.protocol.otlp:
            errors.append("protocol::otlp::endpoint: set by the resolver; remove it")
        else:
            try:
                self.backend("backend.invalid:4317")
            except ConfigError as exc:
                errors.extend(exc.prefixed("protocol::otlp").messages)
        if errors:
            raise ConfigError(errors)
