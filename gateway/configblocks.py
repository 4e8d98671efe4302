"""Config blocks shared by several components, written as the Collector writes them.

Each block is a frozen dataclass used as a named field of a component's ``Config`` (``tls:``), never as a base
class. The sending queue and retry blocks live beside their logic in ``gateway.helpers.exporter``.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.configtypes import Duration, FilePath
from gateway.errors import ConfigError

__all__ = ["ReloadingClientTLS", "ReloadingServerTLS", "TLSClientConfig", "TLSServerConfig"]

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _check_min_version(value: str) -> list[str]:
    if value and value not in _TLS_VERSIONS:
        return [f"min_version: must be 1.2 or 1.3, got {value!r}"]
    return []


@dataclass(frozen=True)
class TLSClientConfig:
    """The Collector's ``configtls.ClientConfig``: how a client verifies the server and presents itself."""

    #: gRPC only: true sends plaintext (no TLS at all). HTTP clients follow the URL scheme instead.
    insecure: bool = False
    #: Use TLS but accept any server certificate and host name. For tests only: it defeats TLS.
    insecure_skip_verify: bool = False
    #: PEM file with the CA certificates that sign the server's certificate; empty uses the system roots.
    ca_file: FilePath = ""
    #: PEM client certificate, for servers that require mutual TLS; needs key_file.
    cert_file: FilePath = ""
    #: PEM private key of cert_file.
    key_file: FilePath = ""
    #: Host name to verify the server's certificate against, instead of the endpoint's host.
    server_name_override: str = ""
    #: Lowest TLS version accepted: 1.2 or 1.3. Empty means 1.2 (HTTP clients; grpc picks its own).
    min_version: str = ""
    #: How often ca_file, cert_file and key_file are checked for changes and re-read; 0 disables it.
    reload_interval: Duration = 60.0

    def validate(self) -> None:
        errors = _check_min_version(self.min_version)
        if self.reload_interval < 0:
            errors.append("reload_interval: must not be negative")
        if bool(self.cert_file) != bool(self.key_file):
            missing, given = ("key_file", "cert_file") if self.cert_file else ("cert_file", "key_file")
            errors.append(f"{missing}: must be set together with {given}")
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
        context.minimum_version = _TLS_VERSIONS.get(self.min_version, ssl.TLSVersion.TLSv1_2)
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


class ReloadingClientTLS:
    """Client TLS material that follows its files, so a rotated client certificate or CA needs no restart.

    ``maybe_reload()`` is cheap (a clock comparison) except once per ``reload_interval``, when it compares the
    files' mtime and size and re-reads them on a change. aiohttp clients keep ``ssl_context``: loading the new
    chain into the same context applies to every new connection. grpc channels cannot change credentials, so a
    grpc exporter opens a new channel when ``maybe_reload()`` returns True.
    """

    def __init__(self, config: TLSClientConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._files = tuple(f for f in (config.ca_file, config.cert_file, config.key_file) if f)
        self._stamp = self._stamps()
        self._next_check = clock() + config.reload_interval
        self.ssl_context = config.ssl_context()

    def _stamps(self) -> tuple[tuple[float, int], ...]:
        return tuple((os.stat(f).st_mtime, os.stat(f).st_size) for f in self._files)

    def maybe_reload(self) -> bool:
        """Re-read the files if the interval passed and one changed; True when it did."""
        if not self._files or not self.config.reload_interval or self._clock() < self._next_check:
            return False
        self._next_check = self._clock() + self.config.reload_interval
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            if self.config.cert_file:
                self.ssl_context.load_cert_chain(self.config.cert_file, self.config.key_file)
            if self.config.ca_file:
                self.ssl_context.load_verify_locations(self.config.ca_file)
        except (OSError, ssl.SSLError):
            return False  # a half-written file: try again at the next interval
        self._stamp = stamp
        return True


@dataclass(frozen=True)
class TLSServerConfig:
    """The Collector's ``configtls.ServerConfig``: the certificate a server presents, and mutual TLS."""

    #: PEM certificate the server presents (required with TLS); reloaded when the file changes.
    cert_file: FilePath = ""
    #: PEM private key of cert_file (required with TLS).
    key_file: FilePath = ""
    #: PEM CA certificates that sign client certificates. Setting it requires every client to present a
    #: certificate signed by one of them (mutual TLS). ca_file is accepted as the same thing.
    client_ca_file: FilePath = ""
    #: Same as client_ca_file (the Collector accepts both on a server).
    ca_file: FilePath = ""
    #: Lowest TLS version accepted: 1.2 (default) or 1.3.
    min_version: str = ""
    #: Highest TLS version accepted: 1.2 or 1.3 (default: the highest the TLS library has).
    max_version: str = ""
    #: Accepted for symmetry with the client block; a server never verifies its own certificate. Ignored.
    insecure_skip_verify: bool = False
    #: How often the files are checked for changes; 0 disables reloading. Default 1m (Collector: reload_interval).
    reload_interval: Duration = 60.0

    def validate(self) -> None:
        errors = _check_min_version(self.min_version)
        if self.max_version and self.max_version not in _TLS_VERSIONS:
            errors.append(f"max_version: must be 1.2 or 1.3, got {self.max_version!r}")
        elif self.min_version and self.max_version and self.min_version > self.max_version:
            errors.append(f"max_version: {self.max_version} is below min_version {self.min_version}")
        if not self.cert_file or not self.key_file:
            errors.append("cert_file: cert_file and key_file are required for a TLS server")
        if self.reload_interval < 0:
            errors.append("reload_interval: must not be negative")
        if errors:
            raise ConfigError(errors)

    @property
    def client_ca(self) -> str:
        return self.client_ca_file or self.ca_file

    def _files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca) if f)


class ReloadingServerTLS:
    """Server TLS material that follows its files: ``maybe_reload()`` re-reads them when a file changed.

    A reload builds a complete new ``SSLContext`` from the files and switches to it only if it loads: the
    certificate and key are taken as a pair (a certificate written before its key fails to load and the previous
    pair stays in use, logged once), and a new client CA file *replaces* the trust store (loading into the old
    context would only add to it, so a removed CA would still be trusted).

    aiohttp keeps the ``ssl_context`` given at start; its ``sni_callback`` hands each new handshake the current
    context, so rotation needs no restart. grpc takes ``grpc_credentials()``, dynamic credentials that ask for
    the current certificates and CA on every new connection (from the same validated read).
    """

    def __init__(self, config: TLSServerConfig, log: Callable[[str], None] | None = None,
                 alpn: list[str] | None = None) -> None:
        self.config = config
        self._log = log
        self._alpn = alpn
        self._stamp = self._stamps()
        self._current = self._new_context()  # start-up: a bad pair or CA fails loudly here
        self._grpc_config: grpc.ServerCertificateConfiguration = self._new_grpc_config(self._read())
        self._grpc_fresh = False
        self._refused: tuple[tuple[float, int], ...] | None = None
        #: What aiohttp serves with: the first context, whose SNI hook switches every handshake to the current one.
        self.ssl_context = self._new_context()
        self.ssl_context.sni_callback = self._select

    def _select(self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        ssl_object.context = self._current
        return None

    def _stamps(self) -> tuple[tuple[float, int], ...]:
        return tuple((os.stat(f).st_mtime, os.stat(f).st_size) for f in self.config._files())

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        ca = Path(self.config.client_ca).read_bytes() if self.config.client_ca else None
        return Path(self.config.cert_file).read_bytes(), Path(self.config.key_file).read_bytes(), ca

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = _TLS_VERSIONS.get(self.config.min_version, ssl.TLSVersion.TLSv1_2)
        context.maximum_version = _TLS_VERSIONS.get(self.config.max_version, ssl.TLSVersion.MAXIMUM_SUPPORTED)
        if self._alpn:
            context.set_alpn_protocols(self._alpn)
        context.load_cert_chain(self.config.cert_file, self.config.key_file)  # SSLError when they do not match
        if self.config.client_ca:
            context.load_verify_locations(self.config.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    @staticmethod
    def _new_grpc_config(material: tuple[bytes, bytes, bytes | None]) -> grpc.ServerCertificateConfiguration:
        cert, key, ca = material
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def maybe_reload(self) -> bool:
        """Re-read the files if any changed; True when the new material is in use. A pair that does not load
        (half-written, or a certificate without its key yet) keeps the previous one and is retried next time."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            material = self._read()
            context = self._new_context()
            if self._read() != material:
                return False  # still being written: the context and the grpc copy could differ
        except (OSError, ssl.SSLError) as exc:
            if self._log is not None and stamp != self._refused:
                self._refused = stamp
                self._log(f"the new TLS files of {self.config.cert_file} do not load ({exc}); "
                          f"the previous certificate, key and client CA stay in use until they do")
            return False
        self._current = context
        self._grpc_config = self._new_grpc_config(material)
        self._stamp = stamp
        self._grpc_fresh = True
        return True

    def _fetch_grpc_config(self) -> grpc.ServerCertificateConfiguration | None:
        if not self._grpc_fresh:
            return None  # None keeps the current certificates
        self._grpc_fresh = False
        return self._grpc_config

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config, self._fetch_grpc_config, require_client_authentication=bool(self.config.client_ca))
