"""Configuration of ``load_balancing``: the Collector's ``loadbalancing`` keys (static and dns resolvers, trace
routing)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from gateway import (
    ConfigError,
    Duration,
    OtlpGrpcConfig,
    Signal,
    decode,
    split_host_port,
    validate_tree,
)

from .routing import ROUTING_KEYS

__all__ = ["Config", "DnsResolverConfig", "ProtocolConfig", "ResolverConfig", "StaticResolverConfig"]

# RFC 1123 labels (underscores tolerated, as resolvers do), optionally ending with the root dot.
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")


#: The port of a backend written without one, as in the Collector.
DEFAULT_PORT = 4317


def with_port(hostname: str) -> str:
    """``sampler-0`` → ``sampler-0:4317``; a hostname with a port is kept."""
    text = hostname.strip()
    try:
        split_host_port(text)
    except ValueError:
        bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        if bare and (_HOSTNAME.match(bare) or _is_ip(bare)):
            return f"[{bare}]:{DEFAULT_PORT}" if ":" in bare else f"{bare}:{DEFAULT_PORT}"
    return text


@dataclass(frozen=True)
class StaticResolverConfig:
    #: Backends as host:port (required), e.g. [sampler-0:4317, sampler-1:4317]; without a port, 4317.
    hostnames: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DnsResolverConfig:
    #: Name resolving to every backend's IP (required), e.g. a Kubernetes headless Service name.
    hostname: str = ""
    #: Port of every backend (default 4317, as in the Collector).
    port: int | str = 4317
    #: How often the name is resolved again (default 5s).
    interval: Duration = 5.0
    #: Deadline of one resolution (default 1s).
    timeout: Duration = 1.0

    def __post_init__(self) -> None:
        # The Collector's port is a string; "4317" and 4317 are the same config (hot reload compares configs).
        if isinstance(self.port, str) and self.port.strip().isdigit():
            object.__setattr__(self, "port", int(self.port))

    def validate(self) -> None:
        errors = []
        hostname = self.hostname.strip()
        if not hostname:
            errors.append("hostname: required, e.g. otelgw-gateway.observability.svc.cluster.local")
        elif not (_HOSTNAME.match(hostname) or _is_ip(hostname)):
            errors.append(f"hostname: must be a host name or IP address without a port (the port goes in port), "
                          f"got {self.hostname!r}")
        if not str(self.port).isdigit() or not 1 <= int(self.port) <= 65535:
            errors.append(f"port: must be between 1 and 65535, got {self.port!r}")
        if self.interval <= 0:
            errors.append("interval: must be > 0")
        if self.timeout <= 0:
            errors.append("timeout: must be > 0")
        if errors:
            raise ConfigError(errors)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ResolverConfig:
    #: A fixed list of backends. Exactly one of static and dns must be set.
    static: StaticResolverConfig | None = None
    #: Backends found by resolving a name periodically. (The Collector's k8s and aws_cloud_map resolvers are not
    #: supported yet.)
    dns: DnsResolverConfig | None = None


@dataclass(frozen=True)
class ProtocolConfig:
    #: The otlp_grpc exporter's block (tls, headers, compression, timeout, sending_queue, retry_on_failure)
    #: used for every backend; the endpoint comes from the resolver.
    otlp: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    #: What decides the backend. Traces: traceID (default), service, resource, attributes. Metrics: service
    #: (default), resource, metric, streamID, attributes. Logs: service (default), traceID, resource, attributes.
    #: See routing.py.
    routing_key: str = ""
    #: With routing_key: attributes, the span (or resource) attributes whose values choose the backend.
    routing_attributes: list[str] = field(default_factory=list)
    #: How to talk to the backends.
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    #: Where the backends are: static or dns.
    resolver: ResolverConfig = field(default_factory=ResolverConfig)

    def backend(self, endpoint: str) -> OtlpGrpcConfig:
        """The otlp_grpc config of one backend; raises ConfigError (paths under protocol::otlp)."""
        config = decode(OtlpGrpcConfig(), {**self.protocol.otlp, "endpoint": endpoint})
        errors = validate_tree(config)
        if errors:
            raise ConfigError(errors)
        return config  # type: ignore[no-any-return]

    @property
    def endpoints(self) -> list[str]:
        """The static backends (none with the dns resolver: those are known only once resolved)."""
        return list(dict.fromkeys(with_port(h) for h in self.resolver.static.hostnames)) if self.resolver.static \
            else []

    def key_for(self, signal: Signal) -> str:
        """The routing key used for ``signal``; ConfigError when the signal cannot be routed by it."""
        keys = ROUTING_KEYS[signal]
        if not self.routing_key:
            return keys[0]
        if self.routing_key not in keys:
            raise ConfigError(f"routing_key: {self.routing_key} cannot route {signal.value}; the keys for "
                              f"{signal.value} are: {', '.join(keys)}")
        return self.routing_key

    def validate_signal(self, signal: Signal) -> None:
        """Called by the host for every pipeline that lists this exporter: a key valid for another signal only
        (``metric`` in a traces pipeline) is an error there. A key valid for no signal is ``validate``'s."""
        if self.routing_key in {key for keys in ROUTING_KEYS.values() for key in keys}:
            self.key_for(signal)

    def validate(self) -> None:
        errors = []
        every = sorted({key for keys in ROUTING_KEYS.values() for key in keys})
        if self.routing_key and self.routing_key not in every:
            errors.append(f"routing_key: must be one of {', '.join(every)}, got {self.routing_key!r}")
        if self.routing_key == "attributes" and not self.routing_attributes:
            errors.append("routing_attributes: required with routing_key: attributes")
        static, dns = self.resolver.static, self.resolver.dns
        if static is not None and dns is not None:
            errors.append("resolver: set exactly one of static or dns, not both")
        elif static is None and dns is None:
            errors.append("resolver: set exactly one of static (a list of backends) or dns (a name to resolve)")
        elif static is not None and not static.hostnames:
            errors.append("resolver::static::hostnames: at least one backend host:port is required")
        for index, hostname in enumerate(static.hostnames if static else []):
            try:
                split_host_port(with_port(hostname))
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
