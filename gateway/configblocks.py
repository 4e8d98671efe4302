"""Config blocks shared by several components, written as the Collector writes them.

Each block is a frozen dataclass used as a named field of a component's ``Config`` (``tls:``), never as a base
class. The sending queue and retry blocks live beside their logic in ``gateway.helpers.exporter``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.errors import ConfigError

__all__ = ["TLSClientConfig"]


@dataclass(frozen=True)
class TLSClientConfig:
    """The Collector's ``configtls.ClientConfig``: how a client verifies the server and presents itself."""

    #: gRPC only: true sends plaintext (no TLS at all). HTTP clients follow the URL scheme instead.
    insecure: bool = False
    #: Use TLS but accept any server certificate and host name. For tests only: it defeats TLS.
    insecure_skip_verify: bool = False
    #: PEM file with the CA certificates that sign the server's certificate; empty uses the system roots.
    ca_file: str = ""
    #: PEM client certificate, for servers that require mutual TLS; needs key_file.
    cert_file: str = ""
    #: PEM private key of cert_file.
    key_file: str = ""
    #: Host name to verify the server's certificate against, instead of the endpoint's host.
    server_name_override: str = ""

    def validate(self) -> None:
        errors = []
        if bool(self.cert_file) != bool(self.key_file):
            missing, given = ("key_file", "cert_file") if self.cert_file else ("cert_file", "key_file")
            errors.append(f"{missing}: must be set together with {given}")
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                errors.append(f"{key}: file {path!r} does not exist")
        if errors:
            raise ConfigError(errors)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for aiohttp and other asyncio clients (files are read now, once)."""
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        """TLS channel credentials for grpc (which cannot skip verification: see otlp_grpc's validate)."""

        def read(path: str) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )
