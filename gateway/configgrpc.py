"""gRPC server and client settings shared by every receiver and exporter, as the Collector's configgrpc.

As in the Collector, these blocks are squashed into a component's config, so they are dataclass bases that a
component's ``Config`` extends. Each turns into grpc channel arguments here, once: :meth:`GRPCServerConfig.
server_options` and :meth:`GRPCClientConfig.channel_options`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

import grpc

from gateway.configauth import AuthConfig
from gateway.configblocks import TLSClientConfig, TLSServerConfig
from gateway.configtypes import Duration
from gateway.errors import ConfigError
from gateway.netaddr import split_host_port

__all__ = ["GRPC_COMPRESSIONS", "GRPCClientConfig", "GRPCServerConfig", "KeepaliveClientConfig",
           "KeepaliveEnforcementPolicy", "KeepaliveServerConfig", "KeepaliveServerParameters", "grpc_compression"]

MIB = 1024 * 1024
#: grpc takes the receive limit in bytes as a signed 32-bit int.
_MAX_GRPC_MIB = (2**31 - 1) // MIB
# gRPC metadata keys are lower-case ASCII; we lower-case what the user writes, so only the characters matter.
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")
#: What grpcio can compress with; the Collector's zstd and snappy are not among them.
GRPC_COMPRESSIONS = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate,
                     "none": grpc.Compression.NoCompression, "": grpc.Compression.NoCompression}
_BALANCERS = ("pick_first", "round_robin")


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def grpc_compression(value: str) -> grpc.Compression:
    return GRPC_COMPRESSIONS[value]


def compression_errors(value: str) -> list[str]:
    if value in GRPC_COMPRESSIONS:
        return []
    if value in ("zstd", "snappy"):
        return [f"compression: {value} is not available over gRPC here (grpcio compresses with gzip and deflate "
                f"only); use gzip, deflate or none, or send {value} over OTLP/HTTP (the otlp_http exporter)"]
    return [f"compression: must be gzip, deflate or none, got {value!r}"]


@dataclass(frozen=True)
class KeepaliveServerParameters:
    """When the server closes or pings connections (0 keeps grpc's default for each)."""

    #: Close a connection that had no call in flight for this long (GOAWAY).
    max_connection_idle: Duration = 0.0
    #: Close any connection after this long, so clients rebalance across replicas (GOAWAY).
    max_connection_age: Duration = 0.0
    #: After max_connection_age, calls in flight get this long to finish before the connection is cut.
    max_connection_age_grace: Duration = 0.0
    #: Ping a client after this long without activity.
    time: Duration = 0.0
    #: Close the connection when a ping is not answered within this long.
    timeout: Duration = 0.0


@dataclass(frozen=True)
class KeepaliveEnforcementPolicy:
    """How often clients may ping; a client that pings more often is sent GOAWAY (too_many_pings)."""

    #: Shortest interval between a client's pings (0 keeps grpc's 5 minutes).
    min_time: Duration = 0.0
    #: Allow pings when no call is in flight.
    permit_without_stream: bool = False


@dataclass(frozen=True)
class KeepaliveServerConfig:
    server_parameters: KeepaliveServerParameters | None = None
    enforcement_policy: KeepaliveEnforcementPolicy | None = None

    def options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = []
        params = self.server_parameters
        if params is not None:
            for key, arg in (("max_connection_idle", "grpc.max_connection_idle_ms"),
                             ("max_connection_age", "grpc.max_connection_age_ms"),
                             ("max_connection_age_grace", "grpc.max_connection_age_grace_ms"),
                             ("time", "grpc.keepalive_time_ms"), ("timeout", "grpc.keepalive_timeout_ms")):
                if getattr(params, key) > 0:
                    options.append((arg, _ms(getattr(params, key))))
        policy = self.enforcement_policy
        if policy is not None:
            if policy.min_time > 0:
                options.append(("grpc.http2.min_ping_interval_without_data_ms", _ms(policy.min_time)))
            options.append(("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)))
        return options

    def validate(self) -> None:
        errors = []
        for block, name in ((self.server_parameters, "server_parameters"),
                            (self.enforcement_policy, "enforcement_policy")):
            for item in fields(block) if block is not None else ():
                value = getattr(block, item.name)
                if not isinstance(value, bool) and value < 0:
                    errors.append(f"{name}::{item.name}: must not be negative")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class GRPCServerConfig:
    """The Collector's ``configgrpc.ServerConfig``; a component's config extends it (its keys are top-level)."""

    #: host:port to listen on; with transport: unix, the socket's path.
    endpoint: str = ""
    #: tcp, or unix for a Unix domain socket (endpoint is then its path; same-host senders skip TCP).
    transport: str = "tcp"
    #: Serve TLS (mutual TLS with client_ca_file); certificates are reloaded when their files change.
    tls: TLSServerConfig | None = None
    #: Require credentials checked by an authenticator extension; failures get UNAUTHENTICATED.
    auth: AuthConfig | None = None
    #: Largest request accepted, in MiB after decompression; larger ones get RESOURCE_EXHAUSTED.
    max_recv_msg_size_mib: int = 4
    #: HTTP/2 streams allowed at once per connection; 0 keeps grpc's default.
    max_concurrent_streams: int = 0
    #: Bytes read from a connection at once (grpc's TCP read chunk); 0 keeps grpc's default.
    read_buffer_size: int = 0
    #: HTTP/2 write buffer of each connection in bytes; 0 keeps grpc's default.
    write_buffer_size: int = 0
    #: Keepalive server parameters and the ping enforcement policy.
    keepalive: KeepaliveServerConfig | None = None
    #: Keep the call's metadata as client metadata with its data (the attributes processor's from_context,
    #: batch metadata_keys and headers_setter read it).
    include_metadata: bool = False

    def server_errors(self) -> list[str]:
        """The shared checks, for the component's ``validate`` to report with its own."""
        errors = []
        if self.transport not in ("tcp", "unix"):
            errors.append(f"transport: must be tcp or unix, got {self.transport!r}")
        elif self.transport == "unix":
            if not self.endpoint.strip():
                errors.append("endpoint: with transport unix, the path of the socket, e.g. /run/otelgw/otlp.sock")
            if self.tls is not None:
                errors.append("tls: not supported with transport unix (the socket's file permissions guard it)")
        else:
            try:
                split_host_port(self.endpoint)
            except ValueError as exc:
                errors.append(f"endpoint: {exc}")
        if not 1 <= self.max_recv_msg_size_mib <= _MAX_GRPC_MIB:
            errors.append(f"max_recv_msg_size_mib: must be between 1 and {_MAX_GRPC_MIB}, "
                          f"got {self.max_recv_msg_size_mib}")
        for key in ("max_concurrent_streams", "read_buffer_size", "write_buffer_size"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0 (0 = grpc's default), got {getattr(self, key)}")
        return errors

    @property
    def bind_target(self) -> str:
        """What grpc binds: host:port, or unix:PATH."""
        return f"unix:{self.endpoint}" if self.transport == "unix" else self.endpoint

    def server_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", self.max_recv_msg_size_mib * MIB)]
        if self.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", self.max_concurrent_streams))
        if self.read_buffer_size:
            options.append(("grpc.experimental.tcp_read_chunk_size", self.read_buffer_size))
        if self.write_buffer_size:
            options.append(("grpc.http2.write_buffer_size", self.write_buffer_size))
        if self.keepalive is not None:
            options.extend(self.keepalive.options())
        return options


@dataclass(frozen=True)
class KeepaliveClientConfig:
    #: Ping the server after this long without activity (0: never).
    time: Duration = 0.0
    #: Close the connection when a ping is not answered within this long (0 keeps grpc's 20s).
    timeout: Duration = 0.0
    #: Ping also when no call is in flight.
    permit_without_stream: bool = False

    def validate(self) -> None:
        if self.time < 0 or self.timeout < 0:
            raise ConfigError("time: time and timeout must not be negative")


@dataclass(frozen=True)
class GRPCClientConfig:
    """The Collector's ``configgrpc.ClientConfig``; an exporter's config extends it (its keys are top-level)."""

    #: host:port of the server (dns:///, unix: targets are passed to grpc as they are).
    endpoint: str = ""
    #: Client TLS; TLS is on unless tls::insecure is true.
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    #: gRPC metadata sent with every call, e.g. {api-key: ${env:API_KEY}}. Keys are lower-cased.
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # often carries credentials
    #: gzip (default, as in the Collector), deflate or none. zstd and snappy are HTTP-only here.
    compression: str = "gzip"
    #: Keepalive pings of the client.
    keepalive: KeepaliveClientConfig | None = None
    #: pick_first, or round_robin across every address the endpoint resolves to. Empty keeps grpc's pick_first.
    balancer_name: str = ""
    #: A call waits for the connection to become ready (within its timeout) instead of failing at once.
    wait_for_ready: bool = False
    #: Add credentials from an authenticator extension (basicauth client_auth, bearertokenauth...) to each call.
    auth: AuthConfig | None = None
    #: Bytes read from the connection at once (grpc's TCP read chunk); 0 keeps grpc's default.
    read_buffer_size: int = 0
    #: HTTP/2 write buffer in bytes; 0 keeps grpc's default.
    write_buffer_size: int = 0
    #: Overrides the :authority pseudo-header (virtual hosting behind a proxy).
    authority: str = ""

    def client_errors(self) -> list[str]:
        """The shared checks (endpoint excepted: its rules differ per exporter), for the exporter's ``validate``."""
        errors = [f"headers::{key}: not a valid gRPC metadata key (use letters, digits, -_.)"
                  for key in self.headers if not _METADATA_KEY.fullmatch(str(key).lower())]
        errors.extend(compression_errors(self.compression))
        if self.balancer_name and self.balancer_name not in _BALANCERS:
            errors.append(f"balancer_name: must be {' or '.join(_BALANCERS)}, got {self.balancer_name!r}")
        for key in ("read_buffer_size", "write_buffer_size"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0 (0 = grpc's default), got {getattr(self, key)}")
        return errors

    def channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = []
        if self.balancer_name:
            options.append(("grpc.lb_policy_name", self.balancer_name))
        keepalive = self.keepalive
        if keepalive is not None:
            if keepalive.time > 0:
                options.append(("grpc.keepalive_time_ms", _ms(keepalive.time)))
            if keepalive.timeout > 0:
                options.append(("grpc.keepalive_timeout_ms", _ms(keepalive.timeout)))
            options.append(("grpc.keepalive_permit_without_calls", int(keepalive.permit_without_stream)))
        if self.read_buffer_size:
            options.append(("grpc.experimental.tcp_read_chunk_size", self.read_buffer_size))
        if self.write_buffer_size:
            options.append(("grpc.http2.write_buffer_size", self.write_buffer_size))
        if self.authority:
            options.append(("grpc.default_authority", self.authority))
        return options

    def metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The configured headers as grpc metadata: lower-case keys, bytes for ``-bin`` keys."""
        return tuple((key.lower(), value.encode() if key.lower().endswith("-bin") else value)
                     for key, value in self.headers.items())
